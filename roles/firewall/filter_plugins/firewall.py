"""Filters of the firewall role: a shim over ``rempart.firewall``, where the rules are derived and tested."""

from __future__ import annotations

from rempart.firewall import FILTERS


class FilterModule:
    def filters(self):
        return dict(FILTERS)
