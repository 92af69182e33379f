"""The shared output timer (voice_server/media/pacer.py): one tick wakes every call whose frame is due, none is woken
before its time, and a call that hangs up while waiting does not hold up the others."""

from __future__ import annotations

import asyncio

from voice_server.media.pacer import SharedPacer

TICK_S = 0.01


async def test_calls_due_in_one_tick_wake_together_and_never_early() -> None:
    pacer = SharedPacer(TICK_S)
    loop = asyncio.get_running_loop()
    woken: dict[int, float] = {}
    asked: dict[int, float] = {}

    async def call(index: int, delay_s: float) -> None:
        asked[index] = loop.time() + delay_s
        await pacer.sleep(delay_s)
        woken[index] = loop.time()

    # Five calls whose frames fall due within a few ms of each other, one much later.
    await asyncio.gather(*(call(i, 0.050 + 0.001 * i) for i in range(5)), call(5, 0.2))
    for index, at in woken.items():
        assert at >= asked[index] - 0.001
    ticks = {round(woken[i] / TICK_S) for i in range(5)}
    assert len(ticks) <= 2  # one tick, or two where the grid happened to fall between the deadlines
    assert woken[5] > max(woken[i] for i in range(5))


async def test_a_call_cancelled_while_waiting_does_not_hold_up_the_others() -> None:
    pacer = SharedPacer(TICK_S)
    hung_up = asyncio.create_task(pacer.sleep(0.03))
    await asyncio.sleep(0)
    hung_up.cancel()
    await asyncio.wait_for(pacer.sleep(0.05), timeout=2.0)
    assert hung_up.cancelled()
    # The timer stops with nobody waiting, and starts again for the next frame.
    await asyncio.sleep(3 * TICK_S)
    await asyncio.wait_for(pacer.sleep(0.01), timeout=2.0)
