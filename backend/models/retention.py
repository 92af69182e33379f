"""Retention and erasure as the API shows them: per-organisation retention periods, deletion records (which keep no
personal data), the "forget this number" request and its result."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from backend.models.common import ApiModel
from core.agent_config import E164

MAX_RETENTION_DAYS = 3650  # ten years; "keep for ever" is null
ErasureScope = Literal["call", "recording", "transcript"]
ErasureReason = Literal["api", "retention", "forget_number"]

Days = int | None


class RetentionSettings(ApiModel):
    """Days after a call ends; null keeps that data for ever. Deleting a call's metadata deletes everything of it,
    so recordings and transcripts cannot outlive it."""

    recordings_days: Days = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)
    transcripts_days: Days = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)
    metadata_days: Days = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)

    @model_validator(mode="after")
    def _metadata_last(self) -> RetentionSettings:
        if self.metadata_days is not None:
            for name in ("recordings_days", "transcripts_days"):
                value = getattr(self, name)
                if value is not None and value > self.metadata_days:
                    raise ValueError(f"{name} must not exceed metadata_days (deleting a call deletes all of it)")
        return self


class ErasureRecord(BaseModel):
    """What was deleted, when and why: the call id and counts only, never numbers or text."""

    id: str
    call_id: str
    scope: ErasureScope
    reason: ErasureReason
    objects_deleted: int
    at: datetime


class ForgetNumberIn(ApiModel):
    number: E164 = Field(description="E.164, e.g. +14155550100")


class ForgetNumberOut(BaseModel):
    calls: int = Field(description="Calls erased (as caller or callee)")
    contacts: int = Field(description="Campaign contact rows removed")
