"""A model of the carrier's playback buffer, on the call's timeline (seconds since the media stream started).

Carriers play the audio we send back to back, in order. Each chunk therefore starts playing at
max(now, end of what was already queued). A clear (barge-in) drops everything not yet played. Marks/checkpoints
come back when playback reaches them: Twilio also echoes cleared marks, Vobiz never acknowledges them, so a
mark cleared here resolves as "not played" and its later echo (if any) is ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Mark:
    name: str
    future: asyncio.Future[bool]
    due_s: float


@dataclass
class PlayoutTracker:
    t0: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    playhead_end_s: float = 0.0
    agent_audio_s: float = 0.0
    clears: int = 0
    marks_played: int = 0
    marks_cleared: int = 0
    first_audio_s: float | None = None
    clear_listeners: list[Callable[[float], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._marks: dict[str, _Mark] = {}

    def now_s(self) -> float:
        return self.clock() - self.t0

    def buffered_s(self) -> float:
        """Audio sent but (by the model) not yet played."""
        return max(0.0, self.playhead_end_s - self.now_s())

    def on_audio_sent(self, duration_s: float) -> float:
        """Returns where on the timeline this chunk starts playing."""
        now = self.now_s()
        start = max(now, self.playhead_end_s)
        self.playhead_end_s = start + duration_s
        self.agent_audio_s += duration_s
        if self.first_audio_s is None:
            self.first_audio_s = now
        return start

    def on_clear(self) -> float:
        """Returns the time of the clear; everything scheduled after it is gone."""
        now = self.now_s()
        self.clears += 1
        self.playhead_end_s = min(self.playhead_end_s, now)
        for listener in self.clear_listeners:
            listener(now)
        for mark in self._marks.values():
            if not mark.future.done():
                mark.future.set_result(False)
                self.marks_cleared += 1
        self._marks.clear()
        return now

    def add_mark(self, name: str, future: asyncio.Future[bool]) -> float:
        """Registers a mark sent after everything queued so far; returns when it should play."""
        self._marks[name] = _Mark(name, future, self.playhead_end_s)
        return self.playhead_end_s

    def on_mark_played(self, name: str) -> bool:
        mark = self._marks.pop(name, None)
        if mark is None:
            return False  # unknown, or cleared earlier (Twilio echoes those too)
        if not mark.future.done():
            mark.future.set_result(True)
        self.marks_played += 1
        return True

    def close(self) -> None:
        for mark in self._marks.values():
            if not mark.future.done():
                mark.future.set_result(False)
        self._marks.clear()
