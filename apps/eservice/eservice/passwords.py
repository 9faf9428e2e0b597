"""Agents' password hashes: scrypt (hashlib), in one self-describing text.

Format: ``scrypt$<log2 n>$<r>$<p>$<salt, base64>$<hash, base64>``. The vault holds these, never a
password; ``python3 -m eservice hash-password`` makes one from a password read on standard input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

LOG_N, R, P = 15, 8, 1


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=1 << log_n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(password, salt, LOG_N, R, P)
    b64 = base64.b64encode
    return f"scrypt${LOG_N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def well_formed(encoded: str) -> bool:
    parts = encoded.split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(x.isdigit() for x in parts[1:4])


def verify(password: str, encoded: str) -> bool:
    if not well_formed(encoded):
        return False
    _, log_n, r, p, salt, digest = encoded.split("$")
    found = _scrypt(password, base64.b64decode(salt), int(log_n), int(r), int(p))
    return hmac.compare_digest(found, base64.b64decode(digest))


# Checked when nobody matches, so that an unknown login costs the same time as a wrong password.
DUMMY = hash_password(base64.b64encode(os.urandom(12)).decode())
