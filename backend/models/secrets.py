"""Organisation secrets as the API shows them: a value goes in, only its name and dates come out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from backend.models.common import ApiModel


class SecretIn(ApiModel):
    value: str = Field(min_length=1, max_length=8192, description="Write-only: never returned by any endpoint.",
                       examples=["sk-live-…"])


class SecretOut(BaseModel):
    name: str
    value_masked: str = Field(examples=["••••••••"], description="Always masked; the value is never returned.")
    version: int = Field(description="1 when created; +1 on every rotation (PUT of an existing name).")
    created_at: datetime
    updated_at: datetime
    updated_by: str | None = None
