"""The event-loop stall watch (voice_server/stall_watch.py, LOOP_STALL_TRACE_MS): a callback that blocks the loop is
found by its own stack while it blocks, and a loop that keeps its beat is never sampled."""

from __future__ import annotations

import asyncio
import time

from voice_server.stall_watch import StallWatch


def _blocks_the_loop() -> None:
    time.sleep(0.15)  # a callback that holds the loop, as a long pass or a blocking call would


async def test_a_blocking_callback_is_sampled_by_its_stack() -> None:
    seen: list[str] = []
    watch = StallWatch(0.02, seen.append)
    watch.start()
    try:
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_soon(_blocks_the_loop)
        await asyncio.sleep(0.05)
    finally:
        await watch.stop()
    assert watch.stalls >= 1  # the blocking callback (a busy machine may add a late beat of its own)
    assert sum(watch.samples.values()) == len(seen) >= 10  # ~130 ms of stall, sampled every 2 ms
    top, _count = watch.samples.most_common(1)[0]
    assert top.startswith("test_stall_watch.py:_blocks_the_loop:")


async def test_a_loop_that_keeps_its_beat_is_never_sampled() -> None:
    watch = StallWatch(0.5)  # far above any scheduling delay of a busy test machine
    watch.start()
    try:
        for _ in range(20):
            await asyncio.sleep(0.005)
    finally:
        await watch.stop()
    assert watch.stalls == 0
    assert not watch.samples
