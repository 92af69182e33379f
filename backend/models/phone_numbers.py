"""Phone numbers: E.164, their carrier and the agent that answers them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import phonenumbers
from pydantic import BaseModel, Field, field_validator

from backend.models.common import ApiModel
from core.agent_config import E164


def validate_e164(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value:
        raise ValueError(f"not in E.164 form; did you mean {formatted}?")
    return value


class PhoneNumberCreate(ApiModel):
    number: E164 = Field(description="E.164, e.g. +14155550123.")
    carrier: Literal["twilio", "vobiz"]
    agent_id: str | None = Field(default=None, max_length=64, description="The agent that answers inbound calls.")
    label: str | None = Field(default=None, max_length=100, examples=["Main line"])

    @field_validator("number")
    @classmethod
    def _valid_number(cls, value: str) -> str:
        return validate_e164(value)


class PhoneNumberUpdate(ApiModel):
    agent_id: str | None = Field(default=None, max_length=64, description="null unlinks the agent.")
    label: str | None = Field(default=None, max_length=100)


class PhoneNumberOut(BaseModel):
    id: str
    number: str
    carrier: Literal["twilio", "vobiz"]
    agent_id: str | None = None
    label: str | None = None
    verified_at: datetime | None = Field(
        default=None, description="When the carrier confirmed this organisation's account owns the number. Calls "
                                  "route to it only then (POST .../verify after adding the carrier credentials).")
    created_at: datetime
    updated_at: datetime
