"""Webhook authenticity: X-Twilio-Signature and Vobiz V3/V2 signatures (reference B7 and A4).

Both are checked against the *public* URL the carrier called (settings.voice_public_base_url + path + query), never the
internal URL behind a TLS-terminating proxy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from twilio.request_validator import RequestValidator


def twilio_signature_valid(auth_token: str, public_url: str, params: Any, signature: str | None) -> bool:
    """RequestValidator checks with and without the default port and compares in constant time."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(public_url, params, signature))


def twilio_signature(auth_token: str, public_url: str, params: Mapping[str, str]) -> str:
    """What Twilio would send (used by the simulator, a test double)."""
    return str(RequestValidator(auth_token).compute_signature(public_url, dict(params)))


class VobizSignatureResult(Enum):
    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"
    REPLAYED = "replayed"


def _vobiz_base_url(url: str) -> str:
    return url.split("?", 1)[0]


def vobiz_signature_v3(auth_token: str, url: str, nonce: str) -> str:
    msg = f"{_vobiz_base_url(url)}.{nonce}".encode()
    return base64.b64encode(hmac.new(auth_token.encode(), msg, hashlib.sha256).digest()).decode()


def vobiz_signature_v2(auth_token: str, url: str, nonce: str) -> str:
    msg = f"{_vobiz_base_url(url)}{nonce}".encode()
    return base64.b64encode(hmac.new(auth_token.encode(), msg, hashlib.sha256).digest()).decode()


@dataclass
class NonceCache:
    """Remembers recent nonces so a captured signed request cannot be replayed (Vobiz nonces are random)."""

    max_entries: int = 10000
    window_s: float = 600.0

    def __post_init__(self) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, nonce: str) -> bool:
        now = time.monotonic()
        while self._seen and (len(self._seen) >= self.max_entries or next(iter(self._seen.values())) < now - self.window_s):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


def check_vobiz_signature(
    auth_token: str, public_url: str, headers: Mapping[str, str], nonces: NonceCache | None
) -> VobizSignatureResult:
    """V3 first, then V2. The body is not signed by Vobiz, so form fields stay unauthenticated claims."""
    for version, compute in (("V3", vobiz_signature_v3), ("V2", vobiz_signature_v2)):
        sig = headers.get(f"x-vobiz-signature-{version.lower()}")
        nonce = headers.get(f"x-vobiz-signature-{version.lower()}-nonce")
        if not sig or not nonce:
            continue
        if not auth_token:
            return VobizSignatureResult.INVALID
        expected = compute(auth_token, public_url, nonce)
        # A header may carry several comma-separated signatures (e.g. during token rotation).
        if not any(hmac.compare_digest(expected, s.strip()) for s in sig.split(",")):
            return VobizSignatureResult.INVALID
        if nonces is not None and not nonces.check_and_add(nonce):
            return VobizSignatureResult.REPLAYED
        return VobizSignatureResult.VALID
    return VobizSignatureResult.MISSING
