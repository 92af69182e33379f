"""In-process wake-ups: a finished call wakes this process's dialer at once (its slot is free) and pushes the
campaign's event stream. Other processes notice on their next poll."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class CampaignSignals:
    def __init__(self) -> None:
        self._versions: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._any: set[asyncio.Event] = set()

    def changed(self, campaign_id: str) -> None:
        self._versions[campaign_id] += 1
        for event in (*self._waiters.get(campaign_id, ()), *self._any):
            event.set()

    def version(self, campaign_id: str) -> int:
        return self._versions[campaign_id]

    async def wait(self, campaign_id: str | None, limit_s: float) -> bool:
        """True when something changed (for `campaign_id`, or anything when None) before the timeout."""
        event = asyncio.Event()
        bucket = self._any if campaign_id is None else self._waiters[campaign_id]
        bucket.add(event)
        try:
            await asyncio.wait_for(event.wait(), limit_s)
            return True
        except TimeoutError:
            return False
        finally:
            bucket.discard(event)
