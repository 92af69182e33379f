"""Background loops: apply call events and dispatch webhooks on the elected leader; housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.services.leader import Leadership

log = logging.getLogger(__name__)


class Loop:
    """Runs `step` whenever kicked or every `interval_s`, only while this replica leads."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], leadership: Leadership, interval_s: float) -> None:
        self.name = name
        self._step = step
        self._leadership = leadership
        self._interval_s = interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def kick(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            busy = False
            try:
                if await self._leadership.is_leader():
                    busy = await self._step() > 0
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the next round retries
                log.exception("background loop %s failed", self.name)
                await asyncio.sleep(1.0)
            if busy:
                await asyncio.sleep(0)  # more may be waiting: go again at once
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)


class Housekeeping:
    def __init__(self, steps: list[Callable[[], Awaitable[int]]], every_s: float = 60.0) -> None:
        self._steps = steps
        self._every_s = every_s
        self._last = 0.0

    async def step(self) -> int:
        if time.monotonic() - self._last < self._every_s:
            return 0
        self._last = time.monotonic()
        for run in self._steps:
            await run()
        return 0


@dataclass
class BackgroundLoops:
    """The backend's leader-only loops, by name (started in Services.start_background)."""

    outbox: Loop
    webhooks: Loop
    housekeeping: Loop
    archiving: Loop
    lease_reaper: Loop
    analysis: Loop
    knowledge: Loop
    agent_tests: Loop

    def all(self) -> list[Loop]:
        return [self.outbox, self.webhooks, self.housekeeping, self.archiving, self.lease_reaper, self.analysis,
                self.knowledge, self.agent_tests]
