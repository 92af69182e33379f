"""Outgoing webhook subscriptions and their delivery log."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl, field_validator

from backend.models.common import ApiModel

KNOWN_EVENTS = (
    "call.started", "call.ended", "call.transcript", "call.analyzed",
    "campaign.started", "campaign.paused", "campaign.resumed", "campaign.completed", "campaign.canceled",
    "campaign.contact_finished", "webhook.test",
)
_SUBSCRIPTION = re.compile(r"^(\*|[a-z]+\.\*|[a-z]+\.[a-z_]+)$")


def subscription_matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class WebhookCreate(ApiModel):
    url: HttpUrl = Field(examples=["https://crm.example.com/hooks/voice"])
    events: list[str] = Field(
        min_length=1, max_length=20, examples=[["call.ended", "call.transcript", "campaign.*"]],
        description=f"Event types ({', '.join(KNOWN_EVENTS)}), `campaign.*` style wildcards, or `*`.",
    )
    description: str = Field(default="", max_length=200)
    active: bool = True

    @field_validator("events")
    @classmethod
    def _valid_events(cls, events: list[str]) -> list[str]:
        bad = [e for e in events if not _SUBSCRIPTION.match(e)]
        if bad:
            raise ValueError(f"not event types or wildcards: {bad}")
        return sorted(set(events))


class WebhookUpdate(ApiModel):
    url: HttpUrl | None = None
    events: list[str] | None = Field(default=None, min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=200)
    active: bool | None = None

    @field_validator("events")
    @classmethod
    def _valid_events(cls, events: list[str] | None) -> list[str] | None:
        return None if events is None else WebhookCreate._valid_events(events)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str = ""
    active: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="Only in the create response: the HMAC key for X-Voiceagent-Signature."
    )


class WebhookDeliveryOut(BaseModel):
    id: str
    event: str
    event_id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    response_status: int | None = None
    error: str | None = None
    created_at: datetime
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
