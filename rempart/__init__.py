"""Rempart's tooling: lab engine and image, inventory model, generated docs.

Each module is also a command: ``python -m rempart <command>`` (see ``python -m rempart --help``).
"""
