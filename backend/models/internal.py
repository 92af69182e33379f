"""Bodies of the internal API (voice server, dialer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from backend.models.common import ApiModel
from core.agent_config import E164
from core.call_events import Carrier, new_event_id, utcnow


class OutboundCallCreate(ApiModel):
    """The dialer registers a call before dialling; the voice server then fetches its context by call id."""

    org_id: str = Field(min_length=1, max_length=64)
    agent_id: str = Field(min_length=1, max_length=64)
    from_number: E164
    to_number: E164
    carrier: Carrier = "twilio"
    call_id: str | None = Field(default=None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                description="Idempotency: the same id returns the same call.")
    campaign_id: str | None = Field(default=None, max_length=64)
    contact_id: str | None = Field(default=None, max_length=64)
    variables: dict[str, str] = Field(default_factory=dict, max_length=100)


class OrgEventIn(ApiModel):
    """A non-call event for an organisation's webhooks (the dialer's campaign.* events)."""

    event_id: str = Field(default_factory=new_event_id, min_length=8, max_length=64)
    org_id: str = Field(min_length=1, max_length=64)
    type: str = Field(pattern=r"^campaign\.[a-z_]+$", examples=["campaign.completed"])
    at: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)


class OrgEventAck(BaseModel):
    accepted: bool
    duplicate: bool
