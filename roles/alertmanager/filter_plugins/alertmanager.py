"""What the alertmanager role derives: the bcrypt hash of its web password (rempart.webauth: kept
while it still matches, so a second run changes nothing)."""

from __future__ import annotations

from rempart.webauth import password_hash as alertmanager_password_hash


class FilterModule:
    def filters(self):
        return {"alertmanager_password_hash": alertmanager_password_hash}
