"""One live call's feed for the backend's live view (core/live_feed.py): interim caller transcripts and a note of
each final turn, to whoever subscribed (routes/internal.py streams it). Nothing is kept: a subscriber sees what
happens from the moment it subscribes, and one that falls behind loses the oldest events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.live_feed import LiveFeedEvent

QUEUE_EVENTS = 100


class LiveFeed:
    def __init__(self, on_watch: Callable[[], None] = lambda: None) -> None:
        self._subscribers: set[asyncio.Queue[LiveFeedEvent | None]] = set()
        self._on_watch = on_watch  # the first subscriber came or the last one left
    @property
    def watched(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: LiveFeedEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[LiveFeedEvent | None]:
        queue: asyncio.Queue[LiveFeedEvent | None] = asyncio.Queue(maxsize=QUEUE_EVENTS)
        self._subscribers.add(queue)
        if len(self._subscribers) == 1:
            self._on_watch()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LiveFeedEvent | None]) -> None:
        if queue in self._subscribers:
            self._subscribers.discard(queue)
            if not self._subscribers:
                self._on_watch()

    def close(self) -> None:
        """The call ended: every subscriber's stream ends (None)."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
