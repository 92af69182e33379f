"""Access tokens: short-lived JWTs, HS256 pinned on both sides (the token's own `alg` header is never trusted).

Claims carry who (sub), which organisation (org) and which login session (sid). The role is not in the token: it
is read from the membership on every request, so a demotion or removal takes effect at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from jose import JWTError, jwt

from core.verified_tokens import VerifiedTokens

ACCESS_AUDIENCE = "voiceagent-api"
ISSUER = "voiceagent-backend"
ALGORITHM = "HS256"


class TokenError(Exception):
    pass


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    org_id: str
    session_id: str
    expires_at: int


def mint_access_token(
    secret: str, user_id: str, org_id: str, session_id: str, ttl_s: int, now: float | None = None
) -> tuple[str, int]:
    if not secret:
        raise TokenError("JWT_SECRET is not set")
    issued = int(now if now is not None else time.time())
    exp = issued + ttl_s
    claims = {
        "sub": user_id, "org": org_id, "sid": session_id, "typ": "access", "aud": ACCESS_AUDIENCE, "iss": ISSUER,
        "iat": issued, "nbf": issued - 5, "exp": exp, "jti": uuid.uuid4().hex,
    }
    return str(jwt.encode(claims, secret, algorithm=ALGORITHM)), exp


_VERIFIED: VerifiedTokens[AccessClaims] = VerifiedTokens()


def decode_access_token(secret: str, token: str) -> AccessClaims:
    if not secret:
        raise TokenError("JWT_SECRET is not set")
    if (known := _VERIFIED.get(secret, token)) is not None:
        return known
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("unexpected token algorithm")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=ACCESS_AUDIENCE, issuer=ISSUER,
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
    except JWTError as exc:
        raise TokenError(str(exc)) from exc
    if claims.get("typ") != "access" or not claims.get("org") or not claims.get("sid"):
        raise TokenError("not an access token")
    decoded = AccessClaims(str(claims["sub"]), str(claims["org"]), str(claims["sid"]), int(claims["exp"]))
    _VERIFIED.put(secret, token, decoded, decoded.expires_at)
    return decoded
