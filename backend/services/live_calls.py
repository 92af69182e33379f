"""Live calls for operators: the calls in progress across an organisation, and one call's transcript, tool calls
and per-turn latency as they are applied, as server-sent events.

Calls in progress live in the small `calls` collection (db/tiered.py), so the org-wide view reads it directly. On the
leader, the outbox processor wakes every stream as soon as a batch is applied; streams on other replicas notice within
`poll_s`. A stream sends a snapshot only when something changed, and a comment every `heartbeat_s` so proxies keep
the connection open. Interim (not yet final) caller transcripts are relayed from the voice server holding the call
(services/live_interims.py), never stored; audio goes from that voice server straight to the browser.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from backend.db.collections import CALL_TURNS, CALLS, CALLS_ARCHIVE, Db
from backend.db.ids import utcnow
from backend.db.tiered import Tiered
from backend.errors import not_found
from backend.models.calls import ToolCallOut, TurnOut
from backend.models.live import LiveCall, LiveInterim
from backend.security.permissions import Principal
from backend.services.call_log import summary_of
from backend.services.erasure import is_erased
from backend.services.live_interims import InterimRelay

Disconnected = Callable[[], Awaitable[bool]]


def _sse(event: str, data: Any, seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


class LiveCalls:
    def __init__(self, db: Db, poll_s: float = 1.0, heartbeat_s: float = 15.0,
                 interims: InterimRelay | None = None) -> None:
        self._db = db
        self._interims = interims
        self._poll_s = poll_s
        self._heartbeat_s = heartbeat_s
        self._changed = asyncio.Event()
        self._calls = Tiered(db, CALLS, CALLS_ARCHIVE)

    def notify(self) -> None:
        """Something was applied: every waiting stream looks again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, wake: asyncio.Event | None = None) -> None:
        waits = [asyncio.ensure_future(self._changed.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        _, pending = await asyncio.wait(waits, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        if wake is not None:
            wake.clear()

    async def in_progress(self, principal: Principal) -> list[LiveCall]:
        now = utcnow()
        query = {"org_id": principal.org_id, "ended_at": None, "status": "in_progress"}
        docs = [d async for d in self._db[CALLS].find(query)]
        docs.sort(key=lambda d: d.get("started_at") or now)
        return [_live(d, now) for d in docs]

    async def org_stream(self, principal: Principal, is_disconnected: Disconnected) -> AsyncIterator[str]:
        """`calls` (the list of LiveCall) whenever the set of calls or their progress changes."""
        last, seq, sent_at = "", 0, 0.0
        loop = asyncio.get_running_loop()
        while not await is_disconnected():
            calls = [c.model_dump(mode="json") for c in await self.in_progress(principal)]
            key = json.dumps([{k: v for k, v in c.items() if k != "elapsed_s"} for c in calls], sort_keys=True)
            if key != last:
                last, seq, sent_at = key, seq + 1, loop.time()
                yield _sse("calls", calls, seq)
            elif loop.time() - sent_at >= self._heartbeat_s:
                sent_at = loop.time()
                yield ": keep-alive\n\n"
            await self._wait()

    async def call_stream(self, principal: Principal, call_id: str, is_disconnected: Disconnected
                          ) -> AsyncIterator[str]:
        """`turn` and `tool` events as they are applied (the ones so far first), `interim` (the caller's words so
        far, relayed from the voice server; the latest one, before the turns of the same pass), then `end` with the
        end reason. A call of another organisation, or an unknown one, is a 404 before the stream starts."""
        doc = await self._calls.find_one(call_id)
        if doc is None or doc["org_id"] != principal.org_id or await is_erased(self._db, call_id):
            raise not_found("Call")
        wake = asyncio.Event()
        latest: list[LiveInterim] = []

        def interim(event: LiveInterim) -> None:
            latest[:] = [event]
            wake.set()

        relay = asyncio.create_task(self._interims.run(call_id, doc.get("voice_server_id"), interim)) \
            if self._interims is not None and doc.get("ended_at") is None else None
        try:
            async for chunk in self._call_events(principal, call_id, doc, is_disconnected, wake, latest):
                yield chunk
        finally:
            if relay is not None:
                relay.cancel()

    async def _call_events(self, principal: Principal, call_id: str, doc: dict[str, Any],
                           is_disconnected: Disconnected, wake: asyncio.Event, latest: list[LiveInterim]
                           ) -> AsyncIterator[str]:
        seen_turns: set[str] = set()
        seen_tools: set[str] = set()
        seq, sent_at = 0, 0.0
        loop = asyncio.get_running_loop()
        while not await is_disconnected():
            if latest:
                seq += 1
                yield _sse("interim", latest.pop().model_dump(mode="json"), seq)
            turns = [t async for t in self._db[CALL_TURNS].find({"call_id": call_id, "org_id": principal.org_id})]
            turns.sort(key=lambda t: (t["turn_index"], t.get("start_ms", 0)))
            sent = False
            for turn in turns:
                if turn["_id"] not in seen_turns:
                    seen_turns.add(turn["_id"])
                    seq += 1
                    yield _sse("turn", TurnOut.model_validate(turn).model_dump(mode="json"), seq)
                    sent = True
            for tool in doc.get("tools") or []:
                if tool["event_id"] not in seen_tools:
                    seen_tools.add(tool["event_id"])
                    seq += 1
                    yield _sse("tool", ToolCallOut.model_validate(tool).model_dump(mode="json"), seq)
                    sent = True
            if doc.get("ended_at") is not None:
                yield _sse("end", {"status": doc.get("status"), "end_reason": doc.get("end_reason"),
                                   "duration_s": doc.get("duration_s")})
                return
            if sent:
                sent_at = loop.time()
            elif loop.time() - sent_at >= self._heartbeat_s:
                sent_at = loop.time()
                yield ": keep-alive\n\n"
            await self._wait(wake)
            doc = await self._calls.find_one(call_id) or doc


def _live(doc: dict[str, Any], now: datetime) -> LiveCall:
    started = doc.get("started_at") or doc.get("created_at") or now
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return LiveCall.model_validate({
        **summary_of(doc), "elapsed_s": round(max(0.0, (now - started).total_seconds()), 1),
        "turn_count": int(doc.get("turn_count") or 0), "last_v2v_ms": doc.get("last_v2v_ms"),
        "voice_server_id": doc.get("voice_server_id")})
