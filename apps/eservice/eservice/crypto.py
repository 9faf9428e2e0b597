"""Documents encrypted at rest: envelope encryption with AES-256-GCM.

Each document gets its own data key (256 bits, random); the document is encrypted with it under
AES-256-GCM, bound to its row by the associated data (the document's id), and the data key is
wrapped (RFC 3394 AES key wrap) by a key-encryption key (KEK). The database stores the wrapped key,
the nonce, the ciphertext and the id of the KEK that wrapped it; never a key in clear.

The KEKs arrive in this process's memory only (role app's key holder, from the operator's vault):
``Keyring`` holds the current one (wraps new documents) and, during a rotation, the previous one
(still unwraps the documents not rewrapped yet).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

KEY_BYTES = 32
NONCE_BYTES = 12


class KeyUnavailable(Exception):
    """A key that is missing or unusable (the message never holds key material)."""


def parse_key(text: str, name: str) -> bytes:
    """A KEK as the vault holds it: 32 random bytes in base64 (``openssl rand -base64 32``)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnavailable(f"{name} is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyUnavailable(f"{name} holds {len(key)} bytes instead of {KEY_BYTES}")
    return key


def key_id(key: bytes) -> str:
    """A public name for a KEK: 16 hex digits of an HMAC keyed by it (reveals nothing of the key)."""
    return hmac.new(key, b"rempart eservice key id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Sealed:
    kek_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


class Keyring:
    """The KEKs in memory: ``current`` wraps, every one held unwraps."""

    def __init__(self, current: bytes, previous: bytes | None = None):
        self.current_id = key_id(current)
        self._keys = {self.current_id: current}
        if previous is not None and previous != current:
            self._keys[key_id(previous)] = previous

    @classmethod
    def from_secrets(cls, secrets: dict) -> Keyring:
        if not secrets.get("kek"):
            raise KeyUnavailable("the key-encryption key (kek) is missing")
        previous = secrets.get("kek_previous")
        return cls(parse_key(secrets["kek"], "kek"), parse_key(previous, "kek_previous") if previous else None)

    @property
    def ids(self) -> list[str]:
        return sorted(self._keys)

    def _kek(self, kek_id: str) -> bytes:
        try:
            return self._keys[kek_id]
        except KeyError:
            raise KeyUnavailable(f"key-encryption key {kek_id} is not in memory") from None

    def seal(self, plaintext: bytes, document_id: str) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, document_id.encode())
        return Sealed(self.current_id, aes_key_wrap(self._kek(self.current_id), data_key), nonce, ciphertext)

    def open(self, sealed: Sealed, document_id: str) -> bytes:
        try:
            data_key = aes_key_unwrap(self._kek(sealed.kek_id), bytes(sealed.wrapped_key))
        except InvalidUnwrap:
            raise KeyUnavailable(f"the data key of document {document_id} does not unwrap with key {sealed.kek_id}") from None
        return AESGCM(data_key).decrypt(bytes(sealed.nonce), bytes(sealed.ciphertext), document_id.encode())

    def rewrap(self, kek_id: str, wrapped_key: bytes) -> bytes:
        """The same data key, wrapped by the current KEK (the document itself is not touched)."""
        return aes_key_wrap(self._kek(self.current_id), aes_key_unwrap(self._kek(kek_id), bytes(wrapped_key)))
