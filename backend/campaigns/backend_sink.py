"""The dialer's view of the backend's call log and webhooks, in-process (the dialer is part of the backend).

It uses the backend's own services (the container's call routing and event ingest), asking them never to wait for
the call log's read model: a request handler may wait (bounded) until its events are applied so its caller reads
its own writes, but a dial or a slot release must not. Events are stored durably as usual and the leader's processor
is kicked to apply them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from backend.models.internal import OrgEventIn, OutboundCallCreate
from backend.services.container import Services
from core.call_events import CallEnded, CallEventBatch, EndReason, OutboundCallContext


def _event_id(key: str) -> str:
    # Stable per fact, so a repeated report (a reaper re-applying an attempt) is a duplicate, not a second event.
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class BackendCallSink:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def register(self, body: OutboundCallCreate) -> OutboundCallContext:
        return await self._services.call_routing.create_outbound_call(body, wait=False)

    async def ended(self, call_id: str, reason: EndReason, at: datetime, detail: str, event_key: str) -> None:
        event = CallEnded(event_id=_event_id(event_key), call_id=call_id, at=at, end_reason=reason, duration_s=0,
                          detail=detail[:500])
        await self._services.ingest.ingest(CallEventBatch(events=[event]), source="dialer", wait=False)

    async def org_event(self, org_id: str, type_: str, data: dict[str, Any], event_key: str) -> None:
        await self._services.ingest.ingest_org_event(
            OrgEventIn(event_id=_event_id(event_key), org_id=org_id, type=type_, data=data), source="dialer",
            wait=False)
