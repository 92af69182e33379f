"""What a voice server tells the backend's live view about a call as it happens, outside the event outbox: interim
caller transcripts (partial, replaced by the final turn, never stored) and a note of each final turn the moment it
is emitted (the turn itself travels through the outbox; the note lets a bench time the live view's delay).

The voice server streams these as NDJSON on /internal/v1/calls/{call_id}/live (service token); the backend's live
call stream relays the interims to the browser.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LiveFeedEvent(BaseModel):
    type: Literal["interim", "turn"]
    speaker: Literal["caller", "agent", "system"] = "caller"
    text: str = Field(default="", max_length=4000)  # interims only, redacted like the transcript
    turn_index: int | None = None  # turns only
    at_ms: int = 0  # on the call's timeline
