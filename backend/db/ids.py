"""Opaque identifiers and timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """Random, unguessable, and says nothing about the resource (never a name)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    # Millisecond precision: what BSON stores, so a value read back compares equal to the one written.
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def day_of(moment: datetime) -> str:
    """UTC calendar day, stored on documents so aggregations can group without date operators."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")
