"""Time for the dialer, injected so tests can move it.

Everything that schedules (retry delays, calling windows, lease expiry) reads `clock.now()`; nothing in the
campaign code calls `datetime.now()` directly. `ManualClock` only moves when a test advances it, while real waits
(polling, callbacks) still run on the event loop in real time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


def _ms(moment: datetime) -> datetime:
    # BSON keeps milliseconds: round so a value read back compares equal to the one written.
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC, millisecond precision."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return _ms(datetime.now(UTC))


class ManualClock:
    """A clock that stands still until told to move (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _ms(start or datetime.now(UTC))
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = _ms(moment.astimezone(UTC))

    def advance(self, seconds: float) -> datetime:
        self._now = _ms(self._now + timedelta(seconds=seconds))
        return self._now
