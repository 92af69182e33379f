"""What a call pipeline needs from whoever runs the call (the voice server), as typed interfaces.

pipelines/ never imports voice_server/: the session implements these and passes them to the factory.
"""

from __future__ import annotations

from typing import Protocol

from core.agent_config import TransferTarget
from core.call_events import (
    EndReason,
    FlowNodeEntered,
    ResolvedAgent,
    ServiceDegraded,
    ToolInvoked,
    TurnRecorded,
)


class CallControl(Protocol):
    async def end_call(self, reason: EndReason, goodbye: str | None, detail: str = "") -> None:
        """Speak the goodbye (if any), wait until the carrier played it, hang up, end the pipeline."""
        ...

    async def transfer(self, target: TransferTarget, announcement: str, brief: str) -> str:
        """Hand the caller to a human; returns a short status for the LLM ("transferring", or an error)."""
        ...

    async def hand_off_agent(self, agent_id: str) -> ResolvedAgent | None:
        """The current version of another agent of the call's organisation, for a flow's hand-off; None when it
        was deleted, belongs to another organisation, or cannot be looked up now."""
        ...


class CallEventSink(Protocol):
    def turn(self, event: TurnRecorded) -> None: ...

    def tool(self, event: ToolInvoked) -> None: ...

    def degraded(self, event: ServiceDegraded) -> None: ...

    def redacted(self, start_ms: int, end_ms: int) -> None:
        """The caller said something redacted between these times (the recording may beep over it)."""
        ...

    def flow_node(self, event: FlowNodeEntered) -> None: ...

    def timeline_ms(self, monotonic_s: float | None = None) -> int:
        """Milliseconds since the media stream started (the call's timeline), for now or a monotonic time."""
        ...
