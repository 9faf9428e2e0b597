"""The bcrypt hash of a web account's password, as the Prometheus tools' web configuration reads it
(exporter-toolkit: Prometheus, Alertmanager): kept while the password still matches it, since bcrypt
salts each hash anew and a new hash at every run would be a change at every run."""

from __future__ import annotations

import bcrypt

# The tools check the hash on every request they authenticate (exporter-toolkit caches the result);
# 10 rounds is their documentation's suggestion.
BCRYPT_ROUNDS = 10


def password_hash(password: str, current: str | None = None) -> str:
    """The current hash when ``password`` still matches it, else a new bcrypt hash."""
    secret = str(password).encode()
    if current:
        try:
            if bcrypt.checkpw(secret, str(current).encode()):
                return str(current)
        except ValueError:
            pass
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()
