"""Calling windows: may this contact be called now, and if not, when does its window next open?

Local time comes from zoneinfo, so DST shifts are handled; a window is [start, end) in local wall-clock time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from backend.campaigns.models import WEEKDAYS, CallingWindows, minutes_of

Spans = tuple[tuple[tuple[int, int], ...], ...]  # per weekday (Mon=0): sorted (start_min, end_min) ranges


def compile_windows(windows: CallingWindows) -> Spans:
    return tuple(
        tuple(sorted((minutes_of(r.start), minutes_of(r.end)) for r in windows.days.get(day, [])))
        for day in WEEKDAYS
    )


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz)
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)


def window_state(now: datetime, tz_name: str, spans: Spans) -> tuple[bool, datetime | None]:
    """(open now, when that changes, in UTC): the end of the current window when open, the next opening when
    closed; None when no weekday has a window."""
    tz = _zone(tz_name)
    local = now.astimezone(tz)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        for start, end in spans[day.weekday()]:
            begins, ends = _at(day, start, tz), _at(day, end, tz)
            if begins <= local < ends:
                return True, ends.astimezone(UTC)
            if begins > local:
                return False, begins.astimezone(UTC)
    return False, None


def contact_timezone(windows: CallingWindows, contact_tz: str | None) -> str:
    return contact_tz if (windows.use_contact_timezone and contact_tz) else windows.timezone
