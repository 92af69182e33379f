"""Encryption at rest for carrier credentials and webhook signing secrets.

AES-256-GCM with a key derived (HKDF-SHA256) from ENCRYPTION_KEY. Each ciphertext is bound to its owner and field
through the associated data (e.g. "org:<id>:twilio:auth_token"), so a ciphertext copied into another organisation's
record does not decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"


class DecryptionError(Exception):
    pass


class SecretBox:
    def __init__(self, key_material: str) -> None:
        if len(key_material) < 16:
            raise ValueError("ENCRYPTION_KEY must be at least 16 characters of random material")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"voiceagent/secretbox", info=b"aes-256-gcm/v1").derive(
            key_material.encode()
        )
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, context: str) -> str:
        version, _, body = token.partition(".")
        if version != _VERSION or not body:
            raise DecryptionError("unknown ciphertext format")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext does not decrypt with this key and context") from exc


def mask_identifier(value: str) -> str:
    """Enough to recognise an account (its last 4 characters), never enough to use it."""
    if len(value) < 10:
        return "••••"
    return f"{value[:2]}••••••{value[-4:]}"


MASKED_SECRET = "••••••••"
