"""Which database operation takes the time under load, from the database's own metrics (issue 21's "say which
operation limits it").

FerretDB 1.24 serves Prometheus metrics on its debug address (`/debug/metrics`): requests per command
(`ferretdb_client_requests_total`), the lifetime of cursors per collection (`ferretdb_cursors_duration_seconds`,
the time a find or aggregate spends producing its batches) and, on SQLite, the connection pool's waits per database
(`ferretdb_sqldb_wait_*`: time commands queued for SQLite's one writer). It has no per-command durations, so on
PostgreSQL the time per SQL statement comes from pg_stat_statements, which FerretDB's statements map onto (a find is
a SELECT with a `_jsonb` filter, an update an UPDATE ... WHERE _jsonb->'_id' = ..., and so on), and what FerretDB's
connections wait on from pg_stat_activity, sampled once a second (locks, WAL flushes, or idle in a transaction).
"""

from __future__ import annotations

import re
import threading
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from voicectl.postgres import PostgresCluster

_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, keyed by (metric name, labels)."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - FerretDB's loopback debug address
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            name, labels, value = match.groups()
            samples[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return samples


def _by(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == metric:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


@dataclass
class DatabaseProbe:
    metrics_url: str
    postgres: PostgresCluster | None  # set when FerretDB stores into the PostgreSQL cluster voicectl started

    # pg_stat_statements must be loaded at server start; its cost is a hash lookup per statement.
    POSTGRES_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}
    _ACTIVITY = ("SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, 'running'),"
                 " round(extract(epoch FROM now() - coalesce(xact_start, query_start))::numeric, 2),"
                 " left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
                 " FROM pg_stat_activity WHERE application_name = 'FerretDB' AND state <> 'idle'")
    waits: Counter[str] = field(default_factory=Counter)
    longest: tuple[float, str] = (0.0, "")
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        if self.postgres is not None:
            self.postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self.postgres.psql("SELECT pg_stat_statements_reset()")
            threading.Thread(target=self._sample_activity, daemon=True).start()
        return scrape(self.metrics_url)

    def _sample_activity(self) -> None:
        """Once a second: what FerretDB's busy PostgreSQL connections are doing, and the oldest transaction."""
        while not self._stop.wait(1.0):
            for line in self.postgres.psql(self._ACTIVITY).splitlines():  # type: ignore[union-attr]
                what, age, query = line.split("|", 2)
                self.waits[what] += 1
                if float(age or 0) > self.longest[0]:
                    self.longest = (float(age), query)

    def finish(self, before: dict[tuple[str, frozenset[tuple[str, str]]], float], elapsed_s: float) -> dict[str, Any]:
        after = scrape(self.metrics_url)

        def delta(metric: str, label: str) -> dict[str, float]:
            return _delta(_by(after, metric, label), _by(before, metric, label))

        commands = delta("ferretdb_client_requests_total", "command")
        cursor_s = delta("ferretdb_cursors_duration_seconds_sum", "collection")
        cursor_n = delta("ferretdb_cursors_duration_seconds_count", "collection")
        wait_s = sum(delta("ferretdb_sqldb_wait_duration_seconds_total", "db").values())
        waits = sum(delta("ferretdb_sqldb_wait_count_total", "db").values())
        result: dict[str, Any] = {
            "source": "FerretDB /debug/metrics" + (" + pg_stat_statements" if self.postgres else ""),
            "commands_per_s": {k: round(v / elapsed_s, 1) for k, v in sorted(commands.items(), key=lambda kv: -kv[1])},
            "cursor_time_by_collection": [
                {"collection": c, "cursors": int(cursor_n.get(c, 0)), "total_s": round(s, 2),
                 "mean_ms": round(1000 * s / cursor_n[c], 2) if cursor_n.get(c) else None}
                for c, s in sorted(cursor_s.items(), key=lambda kv: -kv[1])[:6]],
            "sqlite_pool_waits": {"count": int(waits), "total_s": round(wait_s, 2)},
        }
        if self.postgres is not None:
            self._stop.set()
            result["postgres_statements"] = self._top_statements()
            result["postgres_busy_connections_sampled"] = dict(self.waits.most_common(8))
            result["postgres_oldest_transaction"] = {"age_s": self.longest[0], "query": self.longest[1]}
        return result

    def _top_statements(self, limit: int = 6) -> list[dict[str, Any]]:
        """The statements that took the most execution time since start(), with their share of all of it."""
        rows = self.postgres.psql(  # type: ignore[union-attr]
            "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),"
            " round((100 * total_exec_time / nullif(sum(total_exec_time) OVER (), 0))::numeric, 1),"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
            " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
            f" ORDER BY total_exec_time DESC LIMIT {int(limit)}")
        out = []
        for line in rows.splitlines():
            calls, total, mean, share, query = line.split("|", 4)
            out.append({"calls": int(calls), "total_ms": float(total), "mean_ms": float(mean),
                        "share_pct": float(share or 0), "query": query})
        return out
