"""Calls as the operator sees them: summaries for the list, the detail with its transcript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from backend.models.billing import CostBreakdown
from core.call_events import Carrier, Direction, EndReason, TurnKnowledge, TurnLatency, UsageUnits

CallStatus = Literal[
    "queued", "in_progress", "completed", "busy", "no_answer", "failed", "canceled", "voicemail"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "busy", "no_answer", "failed", "canceled", "voicemail"})


class CallSummary(BaseModel):
    id: str
    direction: Direction
    carrier: Carrier
    from_number: str
    to_number: str
    agent_id: str | None = None
    agent_name: str | None = None
    agent_version: int | None = None
    campaign_id: str | None = None
    contact_id: str | None = None
    status: CallStatus
    answered: bool = False
    end_reason: EndReason | None = None
    created_at: datetime
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    has_recording: bool = False


class TurnOut(BaseModel):
    turn_index: int
    speaker: Literal["caller", "agent", "system"]
    text: str
    start_ms: int
    end_ms: int
    interrupted: bool = False
    latency: TurnLatency | None = None
    knowledge: TurnKnowledge | None = Field(default=None, description="The chunks this answer was given")
    at: datetime | None = None


class ToolCallOut(BaseModel):
    name: str
    ok: bool
    duration_ms: float
    detail: str = ""
    at: datetime | None = None
    arguments: str = Field(default="", description="The model's arguments, as JSON text.")
    status_code: int | None = Field(default=None, description="The webhook's HTTP status, when it answered.")


class CallAnalysisOut(BaseModel):
    """The post-call analysis (agent `analysis` config): pending until the LLM has answered."""

    status: Literal["pending", "done", "failed"]
    attempts: int = 0
    summary: str | None = None
    success: bool | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="The agent's extraction fields.")
    error: str | None = None
    duration_ms: float | None = None
    model: str | None = None
    analyzed_at: datetime | None = None


class DegradationOut(BaseModel):
    """One fallback step of an AI stage during the call (core.call_events.ServiceDegraded)."""

    service: str
    from_endpoint: str = ""
    to: str
    reason: str = ""
    at: datetime | None = None


class FlowStepOut(BaseModel):
    """One node the call's flow entered (core.call_events.FlowNodeEntered), in call-timeline order."""

    node: str
    from_node: str | None = None
    via: str = ""
    at_ms: int = 0
    at: datetime | None = None


class RecordingInfo(BaseModel):
    duration_s: float
    sample_rate: int
    channels: int
    size_bytes: int
    content_type: str = "audio/wav"


class CallDetail(CallSummary):
    turns: list[TurnOut] = Field(default_factory=list)
    tools: list[ToolCallOut] = Field(default_factory=list)
    degradations: list[DegradationOut] = Field(default_factory=list)
    usage: UsageUnits = Field(default_factory=UsageUnits)
    recording: RecordingInfo | None = None
    end_detail: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    analysis: CallAnalysisOut | None = Field(default=None, description="None when the agent has no analysis.")
    cost: CostBreakdown | None = Field(default=None, description="From the call's usage and the price book, once ended.")
    flow_path: list[FlowStepOut] = Field(default_factory=list, description="Nodes of the agent's flow, in order.")
    flow_variables: dict[str, str] = Field(default_factory=dict, description="What the flow collected.")


class RecordingLink(BaseModel):
    url: str = Field(description="Presigned GET URL on the object store; works without credentials until it expires.")
    expires_at: datetime
    content_type: str = "audio/wav"
    size_bytes: int | None = None


class CallFilters(BaseModel):
    agent_id: str | None = Field(default=None, max_length=64)
    direction: Direction | None = None
    status: CallStatus | None = None
    campaign_id: str | None = Field(default=None, max_length=64)
    number: str | None = Field(default=None, max_length=20, description="Part of the caller or callee number.")
    q: str | None = Field(default=None, min_length=2, max_length=200, description="Text in the transcript.")
    since: datetime | None = Field(default=None, description="Created at or after (ISO 8601; UTC if no offset).")
    until: datetime | None = Field(default=None, description="Created before.")
    success: bool | None = Field(default=None, description="Post-call analysis verdict (calls analysed so far).")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
