"""Opaque bearer secrets (refresh tokens, invitation tokens, API keys, webhook secrets).

They are random 256-bit values, so a plain SHA-256 is the right storage hash (no brute force is possible); the
plaintext is shown once and never stored. Each token is "<prefix>_<record id>.<secret>" so the record is found by
its id (one indexed read) and the secret compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

REFRESH_PREFIX = "vrt"
INVITATION_PREFIX = "vinv"
API_KEY_PREFIX = "vak"
WEBHOOK_SECRET_PREFIX = "whsec"

_TOKEN = re.compile(r"^(?P<prefix>[a-z]+)_(?P<id>[0-9a-f]{32})\.(?P<secret>[A-Za-z0-9_-]{20,128})$")


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def compose(prefix: str, record_id: str, secret: str) -> str:
    return f"{prefix}_{record_id}.{secret}"


def parse(token: str, prefix: str) -> tuple[str, str] | None:
    """(record id, secret) when the token has the expected shape, else None."""
    match = _TOKEN.match(token.strip())
    if not match or match.group("prefix") != prefix:
        return None
    return match.group("id"), match.group("secret")
