"""One output timer for every call in the process (`OUTPUT_PACER=shared`, docs/scaling.md plan step 2).

Each call's output transport sends an agent frame when the carrier's modelled buffer drops under the playout lead
(voice_server/media/transport.py). Done per call, that is one sleep per frame per call: at 25 calls and 40 ms
frames, 625 timers a second, each waking the event loop on its own at its own moment. The shared pacer ticks on a
fixed grid instead and, at each tick, wakes every call whose frame is due: the loop wakes at most once a tick
whatever the number of calls, and the due frames of all calls go out back to back.

A frame is released at the first tick at or after its due time, never early: the carrier never holds more than
with a sleep per call, so barge-in goes quiet at least as fast, and the lead shrinks by at most one tick (a quarter
of a frame, 10 ms at 40 ms frames), which the A/B against OUTPUT_PACER=per_call then carries against the shared arm.
"""

from __future__ import annotations

import asyncio
import math

# Loop timers may fire this much before their time (uvloop keeps them in whole milliseconds).
CLOCK_SLACK_S = 0.001


class SharedPacer:
    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def sleep(self, delay_s: float) -> None:
        """Returns at the first tick at or after `delay_s` from now."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop (tests): nothing of the old one carries over
            if self._timer is not None:
                self._timer.cancel()
            self._waiters, self._timer = [], None
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((loop.time() + delay_s, future))
        if self._timer is None:
            self._arm(loop)
        await future

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        # Ticks on a grid of the loop's clock, so every call's wake-up lands in the same loop iteration.
        self._loop = loop
        self._timer = loop.call_at((math.floor(loop.time() / self.tick_s) + 1) * self.tick_s, self._tick)

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        self._timer = None
        horizon = loop.time() + CLOCK_SLACK_S
        waiting = []
        for deadline, future in self._waiters:
            if future.done():  # its call was cancelled (hang-up) while waiting
                continue
            if deadline <= horizon:
                future.set_result(None)
            else:
                waiting.append((deadline, future))
        self._waiters = waiting
        if waiting:
            self._arm(loop)
