"""Short-lived service tokens for the internal API (voice server, dialer → backend).

Both sides share SERVICE_TOKEN_SECRET from the environment; the caller mints a token per few minutes with a
fixed audience, so a user's JWT can never reach the internal API and a leaked token soon expires.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from jose import JWTError, jwt

SERVICE_AUDIENCE = "voiceagent-internal"
SERVICE_ALGORITHM = "HS256"
SERVICE_TOKEN_TTL_S = 300


class ServiceTokenError(Exception):
    pass


def mint_service_token(secret: str, service: str, ttl_s: int = SERVICE_TOKEN_TTL_S) -> str:
    if not secret:
        raise ServiceTokenError("SERVICE_TOKEN_SECRET is not set")
    now = int(time.time())
    claims = {"sub": service, "aud": SERVICE_AUDIENCE, "iat": now, "exp": now + ttl_s, "scope": "internal"}
    return str(jwt.encode(claims, secret, algorithm=SERVICE_ALGORITHM))


def verify_service_token(secret: str, token: str) -> str:
    """Returns the calling service's name."""
    if not secret:
        raise ServiceTokenError("SERVICE_TOKEN_SECRET is not set")
    try:
        claims = jwt.decode(token, secret, algorithms=[SERVICE_ALGORITHM], audience=SERVICE_AUDIENCE)
    except JWTError as exc:
        raise ServiceTokenError(str(exc)) from exc
    if claims.get("scope") != "internal" or not claims.get("sub"):
        raise ServiceTokenError("not a service token")
    return str(claims["sub"])


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
