"""Interim caller transcripts for a call's live view, relayed from the voice server holding the call (its
/internal/v1/calls/{id}/live feed, core/live_feed.py). The backend never sees interims otherwise: final turns come
through the event outbox and are stored; interims are not stored anywhere.

Best effort: when the replica cannot be reached (no heartbeat yet, restarting), the live view still gets every final
turn from the database, and the relay tries again every `retry_s` while the stream is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from backend.db.collections import Db
from backend.errors import ApiError
from backend.models.live import LiveInterim
from backend.services.live_control import replica_of
from core.live_feed import LiveFeedEvent
from core.service_auth import mint_service_token


class InterimRelay:
    def __init__(self, db: Db, http: httpx.AsyncClient, service_token_secret: str, retry_s: float = 2.0) -> None:
        self._db = db
        self._http = http
        self._secret = service_token_secret
        self._retry_s = retry_s

    async def run(self, call_id: str, server_id: str | None, sink: Callable[[LiveInterim], None]) -> None:
        """Until the call ends on its replica (the feed closes) or the caller cancels it."""
        while True:
            try:
                url = await replica_of(self._db, call_id, server_id)
                headers = {"Authorization": f"Bearer {mint_service_token(self._secret, 'backend')}"}
                async with self._http.stream("GET", f"{url}/internal/v1/calls/{call_id}/live", headers=headers,
                                             timeout=httpx.Timeout(5.0, read=None)) as resp:
                    if resp.status_code == 404:
                        return  # not live there any more
                    if resp.status_code == 200:
                        async for line in resp.aiter_lines():
                            if not line.strip():
                                continue
                            event = LiveFeedEvent.model_validate_json(line)
                            if event.type == "interim":
                                sink(LiveInterim(speaker=event.speaker, text=event.text, at_ms=event.at_ms))
                        return  # the call ended: its feed closed
            except (ApiError, httpx.HTTPError, ValidationError):
                pass
            await asyncio.sleep(self._retry_s)
