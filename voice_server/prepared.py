"""Work done at answer-webhook time so the greeting never waits once the media socket opens.

Between the webhook and the socket there is a carrier round trip (hundreds of ms): the agent is already resolved
then, so the greeting is synthesised at the carrier's output rate meanwhile (and the LLM's prompt prefix warmed
after it). The socket picks the result up by call id; on another replica, or if it is not ready, the call still
works and the greeting is synthesised on demand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from core.call_events import ResolvedAgent
from pipelines.streaming import StreamingAudio
from telephony.call_token import CallClaims

PREPARED_TTL_S = 300.0


@dataclass
class PreparedCall:
    claims: CallClaims
    agent: ResolvedAgent
    variables: dict[str, str]
    out_sample_rate: int
    greeting_text: str
    greeting: StreamingAudio | None = None  # being synthesised; playable while still arriving
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    campaign_id: str | None = None
    contact_id: str | None = None


class PreparedCalls:
    def __init__(self) -> None:
        self._calls: dict[str, PreparedCall] = {}

    def add(self, call: PreparedCall,
            synthesize: Callable[[str], tuple[StreamingAudio, asyncio.Task[None]]] | None,
            after: Callable[[], Coroutine[Any, Any, None]] | None = None) -> PreparedCall:
        self._expire()
        existing = self._calls.get(call.claims.call_id)
        if existing is not None:  # a retried webhook: keep the work already under way
            return existing
        if synthesize is not None and call.greeting_text:
            call.greeting, task = synthesize(call.greeting_text)
            call.tasks.append(task)
            if after is not None:
                # Next in line for the CPU once the greeting is done, but nobody waits for it.
                task.add_done_callback(lambda _t: call.tasks.append(
                    asyncio.create_task(after(), name=f"warmup-{call.claims.call_id}")))
        elif after is not None:  # no greeting to synthesise here: the warm-up goes now
            call.tasks.append(asyncio.create_task(after(), name=f"warmup-{call.claims.call_id}"))
        self._calls[call.claims.call_id] = call
        return call

    def take(self, call_id: str) -> PreparedCall | None:
        return self._calls.pop(call_id, None)

    def get(self, call_id: str) -> PreparedCall | None:
        return self._calls.get(call_id)

    def call_ids(self) -> list[str]:
        """Answered calls whose media has not connected yet (still leased to this server, and worth draining)."""
        self._expire()
        return list(self._calls)

    def waiting(self) -> int:
        return len(self.call_ids())

    def _expire(self) -> None:
        cutoff = time.monotonic() - PREPARED_TTL_S
        for call_id in [k for k, v in self._calls.items() if v.created < cutoff]:
            for task in self._calls.pop(call_id).tasks:
                task.cancel()

    def close(self) -> None:
        for call in self._calls.values():
            for task in call.tasks:
                task.cancel()
        self._calls.clear()
