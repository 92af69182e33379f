"""The internal contract between the voice server / dialer and the backend.

The voice server sends these as it goes; the backend stores them idempotently by ``event_id`` so that a retry
after a timeout never duplicates a turn or an end.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_serializer

from core.agent_config import AgentConfig

Carrier = Literal["twilio", "vobiz", "browser"]
Direction = Literal["inbound", "outbound"]
EndReason = Literal[
    "caller_hangup", "agent_hangup", "transferred", "max_duration", "silence_timeout", "unknown_number",
    "error", "voice_server_lost", "busy", "no_answer", "failed", "voicemail", "canceled", "rejected",
]


def new_event_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class CarrierCredentials(BaseModel):
    """Decrypted carrier credentials, only ever sent to the voice server/dialer over the internal API."""

    carrier: Literal["twilio", "vobiz"]
    account_id: str  # Twilio AccountSid / Vobiz auth_id
    auth_token: str
    api_base_url: str | None = None  # None: the carrier's public API; tests point it at the fake carrier


class ResolvedAgent(BaseModel):
    org_id: str
    agent_id: str
    agent_version: int
    agent_name: str
    config: AgentConfig
    phone_number_id: str | None = None
    phone_number: str | None = None
    carrier_credentials: CarrierCredentials | None = None
    # The decrypted organisation secrets this agent names (and no others), by name. SecretStr keeps them out of
    # reprs and logs; they are revealed only when the backend serialises this for the voice server.
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # The organisation's knowledge version (backend/knowledge/versions.py) when the call was set up, for agents with
    # knowledge bases: a voice server's local copy of the table serves the call only if it is at least this new.
    knowledge_version: int | None = None
    # Set when the organisation is over its monthly budget and chose to turn inbound calls away with a message.
    over_budget_message: str | None = None

    @field_serializer("secrets", when_used="json")
    def _reveal(self, secrets: dict[str, SecretStr]) -> dict[str, str]:
        return {name: value.get_secret_value() for name, value in secrets.items()}

    def secret_values(self) -> dict[str, str]:
        return {name: value.get_secret_value() for name, value in self.secrets.items()}


class OutboundCallContext(BaseModel):
    """What the voice server needs for a call the dialer placed (looked up by call id)."""

    call_id: str
    agent: ResolvedAgent
    variables: dict[str, str] = Field(default_factory=dict)
    campaign_id: str | None = None
    contact_id: str | None = None


class UsageUnits(BaseModel):
    caller_audio_s: float = 0.0
    agent_audio_s: float = 0.0
    stt_audio_s: float = 0.0
    llm_prompt_tokens: int = 0
    llm_completion_tokens: int = 0
    tts_characters: int = 0


class TurnLatency(BaseModel):
    """Milliseconds; None where the stage did not run in this turn."""

    vad_stop_ms: float | None = None
    smart_turn_ms: float | None = None
    stt_final_ms: float | None = None
    # The wait for the turn to end (smart-turn's "complete", or its fallback timeout after an "incomplete"): the
    # stage a caller feels most when the turn model misjudges them. From end of speech, like vad_stop_ms.
    turn_end_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_audio_ms: float | None = None
    voice_to_voice_ms: float | None = None


class _Event(BaseModel):
    event_id: str = Field(default_factory=new_event_id, min_length=8, max_length=64)
    call_id: str = Field(min_length=1, max_length=64)
    at: datetime = Field(default_factory=utcnow)


class CallStarted(_Event):
    type: Literal["call.started"] = "call.started"
    org_id: str
    agent_id: str | None = None
    agent_version: int | None = None
    direction: Direction
    carrier: Carrier
    carrier_call_id: str | None = None
    from_number: str
    to_number: str
    campaign_id: str | None = None
    contact_id: str | None = None
    voice_server_id: str | None = None


class CallAnswered(_Event):
    type: Literal["call.answered"] = "call.answered"


class TurnKnowledge(BaseModel):
    """What the knowledge base gave the agent for this answer ("answered from: pricing.pdf, p. 2")."""

    chunk_ids: list[str] = Field(default_factory=list, max_length=20)
    sources: list[str] = Field(default_factory=list, max_length=20, description="'name, p. N' of each chunk")
    error: str | None = Field(default=None, max_length=300, description="Retrieval failed; answered without it.")
    duration_ms: float = 0.0


class TurnRecorded(_Event):
    type: Literal["call.turn"] = "call.turn"
    turn_index: int = Field(ge=0)
    speaker: Literal["caller", "agent", "system"]
    text: str = Field(max_length=20000)
    start_ms: int = Field(ge=0, description="Offset from call start on the call's timeline.")
    end_ms: int = Field(ge=0)
    interrupted: bool = False
    latency: TurnLatency | None = None
    knowledge: TurnKnowledge | None = None


class ToolInvoked(_Event):
    type: Literal["call.tool"] = "call.tool"
    name: str
    ok: bool
    duration_ms: float
    detail: str = ""
    arguments: str = Field(default="", max_length=2000, description="The model's arguments, as JSON text.")
    status_code: int | None = Field(default=None, description="The webhook's HTTP status, when it answered.")


class ServiceDegraded(_Event):
    """An AI stage fell back: to the next endpoint, a canned reply, a pre-recorded clip, a transfer or a hang-up."""

    type: Literal["call.degraded"] = "call.degraded"
    service: Literal["stt", "llm", "tts"]
    from_endpoint: str = Field(default="", max_length=500)
    to: str = Field(max_length=500, description="Next endpoint, or canned_reply | prompt_clip | transfer | end_call.")
    reason: str = Field(default="", max_length=500)


class FlowNodeEntered(_Event):
    """The call's flow moved to a node (core/agent_flow.py); it left `from_node` by `via` (a function or a
    condition). `variables`: what the flow has collected so far; sensitive ones arrive masked."""

    type: Literal["call.flow_node"] = "call.flow_node"
    node: str = Field(max_length=64)
    from_node: str | None = Field(default=None, max_length=64)
    via: str = Field(default="", max_length=100)
    variables: dict[str, str] = Field(default_factory=dict, max_length=100)
    at_ms: int = Field(default=0, ge=0, description="Offset from call start on the call's timeline.")


class CallEnded(_Event):
    type: Literal["call.ended"] = "call.ended"
    end_reason: EndReason
    duration_s: float = Field(ge=0)
    usage: UsageUnits = UsageUnits()
    detail: str = ""


class RecordingStored(_Event):
    type: Literal["call.recording"] = "call.recording"
    bucket: str
    key: str
    size_bytes: int = Field(ge=0)
    duration_s: float = Field(ge=0)
    sample_rate: int
    channels: int = 2


CallEvent = Annotated[
    CallStarted | CallAnswered | TurnRecorded | ToolInvoked | ServiceDegraded | FlowNodeEntered | CallEnded
    | RecordingStored,
    Field(discriminator="type"),
]


class CallEventBatch(BaseModel):
    events: list[CallEvent] = Field(min_length=1, max_length=500)


class CallEventAck(BaseModel):
    accepted: int
    duplicates: int


VOICE_SERVER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


class VoiceServerHeartbeat(BaseModel):
    """A voice server's lease on its live calls (voice_server/lifecycle.py -> backend/services/call_leases.py):
    until `lease_s` after the backend receives it, these calls are known to be carried by this server."""

    voice_server_id: str = Field(pattern=VOICE_SERVER_ID_PATTERN)
    instance_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Changes when the process restarts.")
    calls: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{2,64}$")]] = Field(default_factory=list,
                                                                                  max_length=10000)
    lease_s: float = Field(default=30.0, ge=1, le=3600)
    draining: bool = False
    url: str | None = Field(default=None, max_length=300, pattern=r"^https?://",
                            description="This replica's public base URL (whisper, listen-in).")


class VoiceServerHeartbeatAck(BaseModel):
    lease_s: float
    calls: int
