"""Browser test calls: the session the UI opens a WebSocket with, and the voice server's claim of it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BrowserCallRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)


class BrowserCallSession(BaseModel):
    call_id: str
    ws_url: str = Field(description="ws(s):// URL, or a path on the UI's origin, carrying a single-use call token.")
    sample_rate: int = Field(description="PCM rate of the audio both ways.")
    expires_in_s: int


class BrowserCallClaim(BaseModel):
    """The voice server presents the token's nonce; it is accepted once."""

    nonce: str = Field(min_length=16, max_length=64)
