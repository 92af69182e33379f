"""Short-lived service tokens for everything internal: the backend's and voice server's internal APIs and the speech
servers (ASR, TTS, LLM, embeddings).

Every service shares SERVICE_TOKEN_SECRET from the environment; the caller mints a token per few minutes with a
fixed audience, so a user's JWT can never reach an internal surface and a leaked token soon expires. A token may
carry the organisation a request is made for (`org`): the backend or voice server decides it from its own records,
never from a tenant's input, and the TTS server keeps each organisation's cloned voices to that organisation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from jose import JWTError, jwt

from core.verified_tokens import VerifiedTokens

SERVICE_AUDIENCE = "voiceagent-internal"
SERVICE_ALGORITHM = "HS256"
SERVICE_TOKEN_TTL_S = 300
# What a client sends when it has no key of its own for the platform's endpoint (the OpenAI SDK's placeholder).
NO_KEY = "none"


class ServiceTokenError(Exception):
    pass


@dataclass(frozen=True)
class ServiceCaller:
    service: str
    org: str | None = None  # the organisation the request is made for; None: the platform itself


_VERIFIED: VerifiedTokens[ServiceCaller] = VerifiedTokens()


def mint_service_token(secret: str, service: str, ttl_s: int = SERVICE_TOKEN_TTL_S, org: str | None = None) -> str:
    if not secret:
        raise ServiceTokenError("SERVICE_TOKEN_SECRET is not set")
    now = int(time.time())
    claims: dict[str, object] = {"sub": service, "aud": SERVICE_AUDIENCE, "iat": now, "exp": now + ttl_s,
                                 "scope": "internal"}
    if org:
        claims["org"] = org
    return str(jwt.encode(claims, secret, algorithm=SERVICE_ALGORITHM))


def verify_service_caller(secret: str, token: str) -> ServiceCaller:
    if not secret:
        raise ServiceTokenError("SERVICE_TOKEN_SECRET is not set")
    if (known := _VERIFIED.get(secret, token)) is not None:
        return known
    try:
        claims = jwt.decode(token, secret, algorithms=[SERVICE_ALGORITHM], audience=SERVICE_AUDIENCE)
    except JWTError as exc:
        raise ServiceTokenError(str(exc)) from exc
    if claims.get("scope") != "internal" or not claims.get("sub"):
        raise ServiceTokenError("not a service token")
    org = claims.get("org")
    caller = ServiceCaller(str(claims["sub"]), str(org) if org else None)
    if isinstance(claims.get("exp"), int | float):
        _VERIFIED.put(secret, token, caller, float(claims["exp"]))
    return caller


def verify_service_token(secret: str, token: str) -> str:
    """Returns the calling service's name."""
    return verify_service_caller(secret, token).service


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` value ("" when it is something else)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def service_headers(secret: str, service: str, org: str | None = None) -> dict[str, str]:
    """A fresh `Authorization` header for one request to an internal surface."""
    return {"Authorization": f"Bearer {mint_service_token(secret, service, org=org)}"}


@dataclass
class ServiceTokenSource:
    """Caches a token and renews it a minute before expiry."""

    secret: str
    service: str
    _token: str = ""
    _expires: float = 0.0

    def token(self) -> str:
        if time.time() > self._expires - 60:
            self._token = mint_service_token(self.secret, self.service)
            self._expires = time.time() + SERVICE_TOKEN_TTL_S
        return self._token

    async def token_async(self) -> str:
        """For clients that ask for their key per request (the OpenAI SDK's `api_key` provider)."""
        return self.token()

    def platform_key(self, configured_key: str) -> str:
        """The credential for a platform endpoint: the operator's own key when one is configured (an external
        provider), otherwise a service token (the embedded speech servers; "" without SERVICE_TOKEN_SECRET)."""
        if configured_key and configured_key != NO_KEY:
            return configured_key
        return self.token() if self.secret else ""
