"""One output timer for every call in the process (`OUTPUT_PACER=shared`, docs/scaling.md plan step 2).

Each call's output transport sends an agent frame when the carrier's modelled buffer drops under the playout lead
(voice_server/media/transport.py). Done per call, that is one sleep per frame per call: at 25 calls and 40 ms
frames, 625 timers a second, each waking the event loop on its own at its own moment. The shared pacer ticks on a
fixed grid instead (half a frame) and, at each tick, wakes every call whose frame is due by the next tick: the loop
wakes 50 times a second whatever the number of calls, and the due frames of all calls go out back to back.

Each frame is released at the tick nearest its due time, so up to half a tick early or late: on average the carrier
holds the same lead as with a sleep per call, which keeps the A/B against OUTPUT_PACER=per_call fair, and barge-in
goes quiet within the lead plus half a tick.
"""

from __future__ import annotations

import asyncio
import math


class SharedPacer:
    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def sleep(self, delay_s: float) -> None:
        """Returns at the tick nearest to `delay_s` from now."""
        if delay_s <= self.tick_s / 2:  # now is nearer than any tick
            return
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
        horizon = loop.time() + self.tick_s / 2
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
