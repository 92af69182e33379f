"""Short-lived signed call tokens: what the answer webhook hands the carrier, and the media socket must show.

The token carries everything the socket needs to find the call again (even on another replica), is bound to the
carrier's call id, and expires quickly. It is a compact HS256 JWT: Twilio limits a `<Parameter>` to 500
characters and Vobiz gets it as a URL path segment, so claim names are short.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from jose import JWTError, jwt
from pydantic import BaseModel, Field

from telephony.base import Carrier

CALL_TOKEN_AUDIENCE = "voiceagent-media"
CALL_TOKEN_ALGORITHM = "HS256"


class CallTokenError(Exception):
    pass


class CallClaims(BaseModel):
    call_id: str = Field(min_length=1, max_length=64)
    carrier: Literal["twilio", "vobiz", "browser"]
    carrier_call_id: str = Field(min_length=1, max_length=64)
    direction: Literal["inbound", "outbound"]
    org_id: str
    agent_id: str | None = None
    from_number: str = ""
    to_number: str = ""


_SHORT = {
    "call_id": "cid", "carrier": "c", "carrier_call_id": "ccid", "direction": "d",
    "org_id": "o", "agent_id": "a", "from_number": "f", "to_number": "t",
}
_LONG = {v: k for k, v in _SHORT.items()}


def _encode(secret: str, body: dict[str, Any], audience: str, ttl_s: int) -> str:
    if not secret:
        raise CallTokenError("CALL_TOKEN_SECRET is not set")
    now = int(time.time())
    return str(jwt.encode({**body, "aud": audience, "iat": now, "exp": now + ttl_s}, secret,
                          algorithm=CALL_TOKEN_ALGORITHM))


def _decode(secret: str, token: str, audience: str) -> dict[str, Any]:
    if not secret:
        raise CallTokenError("CALL_TOKEN_SECRET is not set")
    if not token or len(token) > 2000:
        raise CallTokenError("missing or oversized call token")
    try:
        return dict(jwt.decode(token, secret, algorithms=[CALL_TOKEN_ALGORITHM], audience=audience))
    except JWTError as exc:
        raise CallTokenError(str(exc)) from exc


def mint_call_token(secret: str, claims: CallClaims, ttl_s: int) -> str:
    body = {_SHORT[k]: v for k, v in claims.model_dump().items() if v is not None}
    return _encode(secret, body, CALL_TOKEN_AUDIENCE, ttl_s)


def verify_call_token(secret: str, token: str) -> CallClaims:
    body = _decode(secret, token, CALL_TOKEN_AUDIENCE)
    try:
        return CallClaims(**{_LONG[k]: v for k, v in body.items() if k in _LONG})
    except ValueError as exc:
        raise CallTokenError(f"malformed call token: {exc}") from exc


TRANSFER_TOKEN_AUDIENCE = "voiceagent-transfer"


TransferStep = Literal["dial", "hold", "human", "apology"]


class TransferClaims(BaseModel):
    """Signed into the URL a carrier fetches for transfer instructions, so that URL cannot dial anything else.
    `step` says which document: a blind transfer's dial, or a warm transfer's hold (the caller), human (the brief
    `say`, then the room) or apology (the human did not answer)."""

    call_id: str
    target: str
    caller_id: str = ""
    step: TransferStep = "dial"
    say: str = Field(default="", max_length=600)


def mint_transfer_token(secret: str, claims: TransferClaims, ttl_s: int) -> str:
    if not secret:
        raise CallTokenError("CALL_TOKEN_SECRET is not set")
    now = int(time.time())
    body: dict[str, object] = {"cid": claims.call_id, "to": claims.target, "cli": claims.caller_id,
                               "aud": TRANSFER_TOKEN_AUDIENCE, "iat": now, "exp": now + ttl_s}
    if claims.step != "dial":
        body["st"] = claims.step
    if claims.say:
        body["say"] = claims.say
    return str(jwt.encode(body, secret, algorithm=CALL_TOKEN_ALGORITHM))


def verify_transfer_token(secret: str, token: str) -> TransferClaims:
    if not secret or not token or len(token) > 2000:
        raise CallTokenError("missing transfer token")
    try:
        body = jwt.decode(token, secret, algorithms=[CALL_TOKEN_ALGORITHM], audience=TRANSFER_TOKEN_AUDIENCE)
    except JWTError as exc:
        raise CallTokenError(str(exc)) from exc
    try:
        return TransferClaims(call_id=str(body.get("cid", "")), target=str(body.get("to", "")),
                              caller_id=str(body.get("cli", "")), step=body.get("st", "dial"),
                              say=str(body.get("say", "")))
    except ValueError as exc:
        raise CallTokenError(f"malformed transfer token: {exc}") from exc


def transfer_url(secret: str, voice_base_url: str, carrier: Carrier, claims: TransferClaims) -> str:
    """The voice server's /{carrier}/transfer/{token} URL for these claims, valid for 5 minutes."""
    return carrier.path(voice_base_url, "transfer", mint_transfer_token(secret, claims, ttl_s=300))


BROWSER_TOKEN_AUDIENCE = "voiceagent-browser"


class BrowserCallClaims(BaseModel):
    """What the backend signs into a browser test call's WebSocket URL. `nonce` makes it single-use: the voice
    server claims it from the backend (atomically) before the call starts, so a replayed URL is refused."""

    call_id: str = Field(min_length=1, max_length=64)
    org_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    nonce: str = Field(min_length=16, max_length=64)


def mint_browser_token(secret: str, claims: BrowserCallClaims, ttl_s: int) -> str:
    body = {"cid": claims.call_id, "o": claims.org_id, "a": claims.agent_id, "n": claims.nonce}
    return _encode(secret, body, BROWSER_TOKEN_AUDIENCE, ttl_s)


def verify_browser_token(secret: str, token: str) -> BrowserCallClaims:
    body = _decode(secret, token, BROWSER_TOKEN_AUDIENCE)
    try:
        return BrowserCallClaims(call_id=body.get("cid", ""), org_id=body.get("o", ""), agent_id=body.get("a", ""),
                                 nonce=body.get("n", ""))
    except ValueError as exc:
        raise CallTokenError(f"malformed call token: {exc}") from exc
