"""Attacks on the verified-token memory (core/verified_tokens.py): once a token has been verified, a tampered copy,
the same token under another secret, and the token itself after its expiry must all still be refused."""

from __future__ import annotations

import time

import pytest

from backend.security.tokens import TokenError, decode_access_token, mint_access_token
from core.service_auth import ServiceTokenError, mint_service_token, verify_service_caller

SECRET = "s" * 32
OTHER = "o" * 32


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    return ".".join([header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])


def _wait_past(expires_at: float) -> None:
    # python-jose compares whole seconds, so a token is refused from one second after its `exp`.
    time.sleep(max(0.0, expires_at + 1 - time.time()) + 0.05)


def test_a_remembered_service_token_is_not_a_pass_for_others() -> None:
    token = mint_service_token(SECRET, "voice-server", org="org-a")
    assert verify_service_caller(SECRET, token).org == "org-a"
    assert verify_service_caller(SECRET, token).org == "org-a"  # remembered
    with pytest.raises(ServiceTokenError):
        verify_service_caller(SECRET, _tampered(token))
    with pytest.raises(ServiceTokenError):
        verify_service_caller(OTHER, token)


def test_a_remembered_service_token_still_expires() -> None:
    token = mint_service_token(SECRET, "voice-server", ttl_s=1)
    assert verify_service_caller(SECRET, token).service == "voice-server"
    _wait_past(int(time.time()) + 1)
    with pytest.raises(ServiceTokenError):
        verify_service_caller(SECRET, token)


def test_a_remembered_access_token_is_not_a_pass_for_others_and_still_expires() -> None:
    token, expires_at = mint_access_token(SECRET, "user-1", "org-1", "session-1", ttl_s=1)
    assert decode_access_token(SECRET, token).session_id == "session-1"
    assert decode_access_token(SECRET, token).session_id == "session-1"  # remembered
    with pytest.raises(TokenError):
        decode_access_token(SECRET, _tampered(token))
    with pytest.raises(TokenError):
        decode_access_token(OTHER, token)
    _wait_past(expires_at)
    with pytest.raises(TokenError, match="(?i)expired"):
        decode_access_token(SECRET, token)
