"""Analytics by aggregation in the database.

Written for FerretDB 1.x as well as MongoDB: FerretDB evaluates only one accumulator per $group correctly, its
$unwind drops sibling fields, and it has no date or arithmetic expression operators. So each call stores its
numbers as an array of {d: day, k: metric, v: value} (backend/services/call_projection.py `_metrics`), and one pipeline
unwinds that array and sums `v` grouped by (day, metric). Percentiles are nearest-rank: count, then sort + skip + limit.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

from backend.db.collections import CALL_TURNS, CALLS, CALLS_ARCHIVE, Db
from backend.errors import bad_request
from backend.models.analytics import AnalyticsSummary, DayPoint
from backend.security.permissions import Principal
from core.call_events import UsageUnits

MAX_RANGE_DAYS = 366
DAILY_LATENCY_QUERIES = 8  # per-day percentile lookups in flight at once


class AnalyticsService:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def summary(
        self, principal: Principal, since: date | None, until: date | None, agent_id: str | None
    ) -> AnalyticsSummary:
        since, until = day_range(since, until)
        match: dict[str, Any] = {"org_id": principal.org_id, "day": {"$gte": since.isoformat(), "$lte": until.isoformat()}}
        if agent_id:
            match["agent_id"] = agent_id
        totals_pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {"$unwind": "$metrics"},
            {"$group": {"_id": {"d": "$metrics.d", "k": "$metrics.k"}, "v": {"$sum": "$metrics.v"}}},
        ]
        turn_match = {**match, "v2v_ms": {"$gte": 0}}
        # Calls live in two collections (hot and archive, see db/tiered.py): the same pipeline on both, summed.
        hot, archived, latency, daily_latency = await asyncio.gather(
            self._db[CALLS].aggregate(totals_pipeline), self._db[CALLS_ARCHIVE].aggregate(totals_pipeline),
            self._latency(turn_match), self._daily_latency(turn_match),
        )
        per_day: dict[str, dict[str, float]] = {}
        for rows in (hot, archived):
            async for row in rows:
                values = per_day.setdefault(row["_id"]["d"], {})
                values[row["_id"]["k"]] = values.get(row["_id"]["k"], 0) + row["v"]
        totals: dict[str, float] = {}
        for values in per_day.values():
            for key, value in values.items():
                totals[key] = totals.get(key, 0) + value
        days = []
        for offset in range((until - since).days + 1):
            day = since + timedelta(days=offset)
            values = per_day.get(day.isoformat(), {})
            day_p50, day_p95 = daily_latency.get(day.isoformat(), (None, None))
            days.append(DayPoint(date=day, calls=int(values.get("calls", 0)), answered=int(values.get("answered", 0)),
                                 ended=int(values.get("ended", 0)), duration_s=round(values.get("duration_s", 0.0), 3),
                                 p50_ms=day_p50, p95_ms=day_p95))
        ended = int(totals.get("ended", 0))
        answered = int(totals.get("answered", 0))
        samples, p50, p95 = latency
        usage = UsageUnits.model_validate({name.removeprefix("usage."): value for name, value in totals.items()
                                           if name.startswith("usage.")})
        return AnalyticsSummary(
            since=since, until=until, total_calls=int(totals.get("calls", 0)), answered_calls=answered,
            ended_calls=ended, inbound_calls=int(totals.get("inbound", 0)),
            outbound_calls=int(totals.get("outbound", 0)),
            answer_rate=round(answered / ended, 4) if ended else 0.0,
            avg_duration_s=round(totals.get("duration_s", 0.0) / ended, 3) if ended else 0.0,
            voice_to_voice_p50_ms=p50, voice_to_voice_p95_ms=p95, latency_samples=samples, per_day=days, usage=usage,
        )

    async def _latency(self, match: dict[str, Any]) -> tuple[int, float | None, float | None]:
        counted = await (await self._db[CALL_TURNS].aggregate([{"$match": match}, {"$count": "n"}])).to_list()
        n = int(counted[0]["n"]) if counted else 0
        if n == 0:
            return 0, None, None
        p50, p95 = await asyncio.gather(self._nth(match, _rank(0.50, n)), self._nth(match, _rank(0.95, n)))
        return n, p50, p95

    async def _daily_latency(self, match: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
        """Voice-to-voice p50/p95 per UTC day: count per day (one accumulator), then the two ranks of each day
        that has samples, a bounded number of queries at a time."""
        rows = await (await self._db[CALL_TURNS].aggregate([
            {"$match": match}, {"$group": {"_id": "$day", "n": {"$sum": 1}}},
        ])).to_list()
        counts = {str(row["_id"]): int(row["n"]) for row in rows if row.get("_id") and row.get("n")}
        gate = asyncio.Semaphore(DAILY_LATENCY_QUERIES)

        async def day_ranks(day: str, n: int) -> tuple[str, tuple[float | None, float | None]]:
            async with gate:
                day_match = {**match, "day": day}
                p50, p95 = await asyncio.gather(self._nth(day_match, _rank(0.50, n)),
                                                self._nth(day_match, _rank(0.95, n)))
                return day, (p50, p95)

        return dict(await asyncio.gather(*(day_ranks(day, n) for day, n in counts.items())))

    async def _nth(self, match: dict[str, Any], index: int) -> float | None:
        pipeline: list[dict[str, Any]] = [{"$match": match}, {"$sort": {"v2v_ms": 1}}, {"$skip": index}, {"$limit": 1},
                    {"$project": {"_id": 0, "v2v_ms": 1}}]
        rows = await (await self._db[CALL_TURNS].aggregate(pipeline)).to_list()
        return float(rows[0]["v2v_ms"]) if rows else None


def day_range(since: date | None, until: date | None) -> tuple[date, date]:
    """The UTC days asked for: `until` defaults to today, `since` to 29 days before; 400 when reversed or too long."""
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=29)
    if since > until:
        raise bad_request("`since` is after `until`", path="query.since")
    if (until - since).days >= MAX_RANGE_DAYS:
        raise bad_request(f"At most {MAX_RANGE_DAYS} days at a time", path="query.since")
    return since, until


def _rank(quantile: float, n: int) -> int:
    """Nearest-rank percentile, as a 0-based index into the sorted values."""
    return max(0, math.ceil(quantile * n) - 1)
