"""Analytics over a date range (UTC days)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from core.call_events import UsageUnits


class DayPoint(BaseModel):
    date: date
    calls: int = 0
    answered: int = 0
    ended: int = 0
    duration_s: float = 0.0
    p50_ms: float | None = Field(default=None, description="Voice-to-voice median of the day's turns.")
    p95_ms: float | None = Field(default=None, description="Voice-to-voice 95th percentile of the day's turns.")


class AnalyticsSummary(BaseModel):
    since: date
    until: date
    total_calls: int
    answered_calls: int
    ended_calls: int
    inbound_calls: int
    outbound_calls: int
    answer_rate: float = Field(description="Answered / ended calls, 0..1.")
    avg_duration_s: float = Field(description="Mean duration of ended calls.")
    voice_to_voice_p50_ms: float | None = None
    voice_to_voice_p95_ms: float | None = None
    latency_samples: int = 0
    per_day: list[DayPoint]
    usage: UsageUnits
