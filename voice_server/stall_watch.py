"""What stalls the event loop, found while it happens (opt-in: `LOOP_STALL_TRACE_MS`, a diagnostic, off by default).

The loop-lag probe (voice_server/metrics.py) shows that the one event loop of a busy voice server sometimes stops for
tens of ms, long enough to run the carrier's playout buffer dry, but not why. A profiler averages over the whole
run and hides the rare long callback among the many short ones. This watch looks only at the stalls: a task on the
loop stamps a heartbeat every few ms, and a watchdog thread that sees the heartbeat late by more than the threshold
reads the loop thread's Python stack (`sys._current_frames()`) every `poll_s` until the loop beats again. Each sample
is counted by its stack (innermost frames), so the counts say where the stalled time went; they are exported as
`voice_loop_stall_samples_total{stack=...}` (one sample = `poll_s` of stall).

Limits: the watchdog needs the GIL to read the stack, so a stall that holds the GIL in C (a garbage-collector pass,
a long numpy call) is sampled only after it ends; the collector's passes are timed separately by gc.callbacks
(`voice_gc_pause_seconds`). The watch costs a wake-up of the loop every `beat_s`, so it is for diagnosis, not for
production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType

# Frames from these files are plumbing around every callback (the loop, tasks, futures): skipped in the key.
_PLUMBING = ("asyncio" + os.sep, "uvloop" + os.sep, os.sep + "threading.py", os.sep + "contextlib.py")
_STACK_DEPTH = 6


def stack_key(frame: FrameType | None, depth: int = _STACK_DEPTH) -> str:
    """The innermost `depth` frames outside the event-loop plumbing, innermost first: 'file.py:func:line < ...'."""
    parts: list[str] = []
    while frame is not None and len(parts) < depth:
        code = frame.f_code
        if not any(p in code.co_filename for p in _PLUMBING):
            parts.append(f"{os.path.basename(code.co_filename)}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(parts) or "(event loop, no Python frame)"


class StallWatch:
    """Samples the loop thread's stack while the loop is late by more than `threshold_s`."""

    def __init__(self, threshold_s: float, on_sample: Callable[[str], None] | None = None, *,
                 beat_s: float = 0.005, poll_s: float = 0.002) -> None:
        self.threshold_s, self.beat_s, self.poll_s = threshold_s, beat_s, poll_s
        self.samples: Counter[str] = Counter()
        self.stalls = 0
        self._on_sample = on_sample
        self._beat = time.monotonic()
        self._loop_thread: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """From the event loop's thread."""
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._heartbeat(), name="stall-watch")
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(self.beat_s)

    def _watch(self) -> None:
        in_stall = False
        while not self._stop.wait(self.poll_s):
            late = time.monotonic() - self._beat - self.beat_s
            if late <= self.threshold_s:
                in_stall = False
                continue
            if not in_stall:
                self.stalls += 1
                in_stall = True
            frame = sys._current_frames().get(self._loop_thread or 0)
            key = stack_key(frame)
            del frame
            self.samples[key] += 1
            if self._on_sample is not None:
                self._on_sample(key)
