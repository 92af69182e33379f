"""Calls in progress as the Live page shows them, and the events of one call's live view."""

from __future__ import annotations

from pydantic import BaseModel, Field

from backend.models.calls import CallSummary
from backend.models.common import ApiModel


class LiveCall(CallSummary):
    """A call in progress: its summary, how long it has run, how far it got, and which replica holds it."""

    elapsed_s: float
    turn_count: int = 0
    last_v2v_ms: float | None = None
    voice_server_id: str | None = None


class WhisperIn(ApiModel):
    text: str = Field(min_length=1, max_length=1000, description="What the agent should do; the caller hears nothing.")


class ListenTicket(BaseModel):
    """Where the browser listens in (or takes over), and the one-minute ticket to send as the socket's first message."""

    url: str = Field(description="WebSocket URL on the voice server that holds the call.")
    ticket: str
    expires_in_s: int


class LiveInterim(BaseModel):
    """The caller's words so far (not stored: the next caller turn replaces it)."""

    speaker: str = "caller"
    text: str
    at_ms: int
