"""The calls this voice server knows about: live sessions, recently ended calls (so a dropped stream may reconnect
but a call we ended may not), the carrier credentials of recent calls (to check their status callbacks without a
lookup), Twilio warm transfers waiting for the human, and the latency record of recently ended calls.

Routes ask it questions (`live`, `has_ended`, `may_reconnect`, `latency_of`) instead of reaching into its dicts.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.call_events import CarrierCredentials, ResolvedAgent
from pipelines.factory import CallPipeline
from pipelines.observers import TurnTiming
from telephony.call_token import CallClaims
from voice_server.agent_lookup import AgentLookup
from voice_server.live_feed import LiveFeed
from voice_server.media.playout import PlayoutTracker
from voice_server.media.takeover import Takeover

RECENT_CALLS = 5000
LATENCY_LOG_CALLS = 500


class LiveCall(Protocol):
    """What the registry needs from a call session."""

    call_id: str
    claims: CallClaims
    agent: ResolvedAgent
    call: CallPipeline | None
    tracker: PlayoutTracker
    finished: asyncio.Event
    feed: LiveFeed

    def carrier_ended(self, detail: str) -> None:
        ...

    async def whisper(self, text: str) -> None:
        ...

    def listen(self, sink: Callable[[bytes], None]) -> tuple[int, Callable[[], None]] | None:
        ...

    async def take_over(self, caller_sink: Callable[[bytes], None]) -> Takeover | None:
        ...


@dataclass
class CallLatency:
    call_id: str
    carrier_call_id: str
    t0_monotonic: float
    turns: list[dict[str, Any]] = field(default_factory=list)
    marks_played: int = 0
    clears: int = 0
    agent_audio_s: float = 0.0


def _trim(entries: OrderedDict[str, Any], keep: int, dropped: Callable[[Any], object] | None = None) -> None:
    while len(entries) > keep:
        old = entries.popitem(last=False)[1]
        if dropped is not None:
            dropped(old)


class CallRegistry:
    def __init__(self, lookup: AgentLookup) -> None:
        self._lookup = lookup
        self._live: dict[str, LiveCall] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # call_id -> end reason (refuse phantom reconnects)
        self._credentials: OrderedDict[str, CarrierCredentials] = OrderedDict()
        self._latency: OrderedDict[str, CallLatency] = OrderedDict()
        self._latency_by_carrier_id: dict[str, str] = {}
        # Twilio warm transfers waiting for the human: call_id -> (credentials, caller's CallSid).
        self.warm_transfers: dict[str, tuple[CarrierCredentials, str]] = {}

    # -- live calls -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._live

    def __iter__(self) -> Iterator[LiveCall]:
        return iter(list(self._live.values()))

    def ids(self) -> list[str]:
        return sorted(self._live)

    def live(self, call_id: str) -> LiveCall | None:
        return self._live.get(call_id)

    def find_live(self, call_or_carrier_id: str) -> LiveCall | None:
        return self._live.get(call_or_carrier_id) or next(
            (c for c in self._live.values() if c.claims.carrier_call_id == call_or_carrier_id), None)

    def started(self, call: LiveCall) -> None:
        self._live[call.call_id] = call

    def ended(self, call: LiveCall, reason: str) -> None:
        if self._live.get(call.call_id) is call:
            del self._live[call.call_id]
        # A socket that simply closed may come back (Vobiz maxRetries): that call may reconnect, without a
        # second greeting. A call we ended (hang-up, transfer, error) must not (a phantom reconnect).
        self._ended[call.call_id] = reason
        _trim(self._ended, RECENT_CALLS)

    def has_ended(self, call_id: str) -> bool:
        return call_id in self._ended

    def may_reconnect(self, call_id: str) -> bool | None:
        """None: never seen here; True: seen, and its stream only dropped; False: we ended that call."""
        reason = self._ended.get(call_id)
        if reason is None:
            return None
        return reason == "caller_hangup"

    # -- carrier credentials ----------------------------------------------------------------------------------
    def remember_credentials(self, call_id: str, creds: CarrierCredentials | None) -> None:
        if creds is None:
            return
        self._credentials[call_id] = creds
        _trim(self._credentials, RECENT_CALLS)

    async def credentials_for(self, call_id: str, carrier: str, to_number: str, from_number: str
                              ) -> CarrierCredentials | None:
        """The account credentials a callback about this call must be signed with."""
        session = self._live.get(call_id)
        if session is not None:
            return session.agent.carrier_credentials
        if call_id in self._credentials:
            return self._credentials[call_id]
        match = await self._lookup.find(outbound_call_id=call_id, numbers=(to_number, from_number), carrier=carrier)
        return match.agent.carrier_credentials if match.agent is not None else None

    # -- latency of recent calls ------------------------------------------------------------------------------
    def remember_latency(self, call_id: str, carrier_call_id: str, turns: list[TurnTiming],
                         tracker: PlayoutTracker) -> None:
        entry = CallLatency(call_id=call_id, carrier_call_id=carrier_call_id, t0_monotonic=tracker.t0,
                            marks_played=tracker.marks_played, clears=tracker.clears,
                            agent_audio_s=tracker.agent_audio_s)
        for timing in turns:
            entry.turns.append({"stages": timing.stages(), "latency": timing.latency().model_dump(),
                                "smart_turn_ms": timing.smart_turn_ms})
        self._latency[call_id] = entry
        self._latency_by_carrier_id[carrier_call_id] = call_id
        _trim(self._latency, LATENCY_LOG_CALLS, lambda old: self._latency_by_carrier_id.pop(old.carrier_call_id, None))

    def latency_of(self, call_or_carrier_id: str) -> CallLatency | None:
        return self._latency.get(self._latency_by_carrier_id.get(call_or_carrier_id, call_or_carrier_id))
