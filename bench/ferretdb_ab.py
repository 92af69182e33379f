"""FerretDB on PostgreSQL against FerretDB on SQLite (issue 21): the dialer and backend benchmarks, both databases
side by side in one invocation, and the "FerretDB on PostgreSQL vs SQLite (issue 21)" section of BENCHMARKS.md.

Why a separate script: the local default database is switched only if PostgreSQL wins on both benchmarks, so both
must run on the same machine at the same time with the same settings. It runs bench/dialer_bench.py and
bench/backend_load.py with `--db both --out ...` (their own sections stay untouched), plus bench/ferretdb_ops.py
(the database operations alone), and renders the comparison, including which database operation took the time
(bench/db_metrics.py).

    .venv/bin/python bench/ferretdb_ab.py [--contacts 300] [--cap 20] [--cps 20] [--rates 100,300] [--duration 30]
    .venv/bin/python bench/ferretdb_ab.py --render     # only rewrite the section from the recorded JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import BENCHMARKS_MD, replace_section  # noqa: E402

DIALER_JSON = ROOT / "bench" / "results" / "ferretdb_ab_dialer.json"
BACKEND_JSON = ROOT / "bench" / "results" / "ferretdb_ab_backend.json"
OPS_JSON = ROOT / "bench" / "results" / "ferretdb_ab_ops.json"
SECTION_START = "<!-- ferretdb-ab:start -->"
SECTION_END = "<!-- ferretdb-ab:end -->"
DBS = ("sqlite", "postgresql")


def commands(args: argparse.Namespace) -> list[list[str]]:
    py = [sys.executable]
    dialer = [*py, "bench/dialer_bench.py", "--db", "both", "--runs", "backend", "--contacts", str(args.contacts),
              "--cap", str(args.cap), "--cps", f"{args.cps:g}", "--out", str(DIALER_JSON.relative_to(ROOT))]
    backend = [[*py, "bench/backend_load.py", "--db", "both", "--rate", str(rate), "--duration", f"{args.duration:g}",
                "--out", str(BACKEND_JSON.relative_to(ROOT))] for rate in args.rates.split(",")]
    ops = [*py, "bench/ferretdb_ops.py", "--db", "both", "--out", str(OPS_JSON.relative_to(ROOT))]
    return [ops, dialer, *backend]


def shell(argv: list[str]) -> str:
    return " ".join(".venv/bin/python" if a == sys.executable else a for a in argv)


def _db(run: dict[str, Any]) -> str:
    return "postgresql" if "PostgreSQL" in run["config"]["database"] else "sqlite"


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def dialer_rows(runs: list[dict[str, Any]]) -> str:
    headers = ["database", "dials", "placed/s (cps cap)", "bound/s (% reached)", "peak live (cap)",
               "slot free -> dial p50 / p95 ms", "cap violations", "double dials", "wall s", "load avg start/end"]
    return md_table(headers, [
        [r["database"], r["dials"], f"{r['placed_per_s']} ({r['cps_cap']})", f"{r['bound_per_s']} ({r['of_bound_pct']} %)",
         f"{r['peak_live_calls']} ({r['concurrency_cap']})",
         f"{r['slot_free_to_dial_ms']['p50']} / {r['slot_free_to_dial_ms']['p95']}", r["cap_violations"],
         r["double_dials"], r["wall_s"], f"{r['load_avg_1m']['start']} / {r['load_avg_1m']['end']}"]
        for r in runs])


def backend_rows(runs: list[dict[str, Any]]) -> str:
    headers = ["rate", "database", "ok/s", "p50 ms", "p99 ms", "max ms", "errors",
               "CPU s backend / FerretDB / PostgreSQL", "backlog drained s", "load avg start/end"]
    rows = []
    for r in sorted(runs, key=lambda r: (r["config"]["rate_rps"], _db(r))):
        a, m, cpu = r["all"], r["machine"], r["cpu_seconds"]
        postgres = cpu.get("postgres", 0) if _db(r) == "postgresql" else "-"
        rows.append([f"{r['config']['rate_rps']:g}/s", _db(r), round(a["ok"] / r["elapsed_s"], 1), a["p50_ms"],
                     a["p99_ms"], a["max_ms"], a["errors"], f"{cpu['backend']} / {cpu['ferretdb']} / {postgres}",
                     r["apply_backlog_drain_s"],
                     f"{m['load_avg_at_start'][0]:.1f} / {m['load_avg_at_end'][0]:.1f}"])
    return md_table(headers, rows)


def ops_rows(runs: list[dict[str, Any]]) -> str:
    names = list(runs[0]["operations"])
    headers = ["database", "load avg", *[f"{n} /s (errors)" for n in names]]
    return md_table(headers, [[r["database"], r["load_avg_1m_start"],
                               *[f"{r['operations'][n]['per_s']} ({r['operations'][n]['errors']})" for n in names]]
                              for r in runs])


def database_ops(runs: list[dict[str, Any]]) -> str:
    """Per run at the highest rate: the commands FerretDB served and where the database spent its time."""
    top = max(r["config"]["rate_rps"] for r in runs)
    out = []
    for r in sorted((r for r in runs if r["config"]["rate_rps"] == top), key=_db):
        ops = r["database_ops"]
        cmds = ", ".join(f"{k} {v}" for k, v in list(ops["commands_per_s"].items())[:6])
        cursors = ", ".join(f"{c['collection']} {c['total_s']} s ({c['cursors']} × {c['mean_ms']} ms)"
                            for c in ops["cursor_time_by_collection"][:3])
        waits = ops["sqlite_pool_waits"]
        out.append(f"- **{_db(r)}, {top:g} req/s**: FerretDB commands/s: {cmds}. Cursor lifetimes by collection: "
                   f"{cursors}." + (f" SQLite connection-pool waits: {waits['count']} ({waits['total_s']} s)."
                                    if _db(r) == "sqlite" else ""))
        if "postgres_busy_connections_sampled" in ops:
            busy = ", ".join(f"{k} {v}" for k, v in ops["postgres_busy_connections_sampled"].items())
            oldest = ops["postgres_oldest_transaction"]
            out.append(f"  - pg_stat_activity, FerretDB's busy connections summed over 1 s samples: {busy or 'none'};"
                       f" oldest transaction seen {oldest['age_s']} s: `{oldest['query']}`")
        for s in ops.get("postgres_statements", []):
            out.append(f"  - pg_stat_statements: {s['share_pct']} % of execution time, {s['calls']} calls × "
                       f"{s['mean_ms']} ms: `{s['query']}`")
    return "\n".join(out)


def verdict(dialer: list[dict[str, Any]], backend: list[dict[str, Any]]) -> str:
    """Mechanical: PostgreSQL wins a benchmark when it is better on every listed figure there."""
    by_db = {r["database"]: r for r in dialer}
    lines = []
    dialer_win = None
    if set(by_db) == set(DBS):
        s, p = by_db["sqlite"], by_db["postgresql"]
        dialer_win = (p["placed_per_s"] > s["placed_per_s"]
                      and p["slot_free_to_dial_ms"]["p50"] < s["slot_free_to_dial_ms"]["p50"])
        lines.append(f"Dialer: placed {s['placed_per_s']} → {p['placed_per_s']} calls/s, slot free → dial p50 "
                     f"{s['slot_free_to_dial_ms']['p50']} → {p['slot_free_to_dial_ms']['p50']} ms (SQLite → "
                     f"PostgreSQL): PostgreSQL {'wins' if dialer_win else 'does not win'}.")
    backend_wins = []
    for rate in sorted({r["config"]["rate_rps"] for r in backend}):
        pair = {_db(r): r for r in backend if r["config"]["rate_rps"] == rate}
        if set(pair) != set(DBS):
            continue
        s, p = pair["sqlite"]["all"], pair["postgresql"]["all"]
        win = p["errors"] <= s["errors"] and (p["p99_ms"] or 1e9) < (s["p99_ms"] or 1e9)
        backend_wins.append(win)
        lines.append(f"Backend at {rate:g} req/s: p99 {s['p99_ms']} → {p['p99_ms']} ms, errors {s['errors']} → "
                     f"{p['errors']}: PostgreSQL {'wins' if win else 'does not win'}.")
    both = dialer_win and backend_wins and all(backend_wins)
    lines.append(f"**PostgreSQL {'wins on both benchmarks' if both else 'does not win on both benchmarks'}** in this "
                 "run" + (" (the issue's condition for switching the local default)." if both else
                          ": the local default stays SQLite."))
    return "\n".join(f"- {line}" for line in lines)


def render() -> None:
    dialer = json.loads(DIALER_JSON.read_text())
    backend = json.loads(BACKEND_JSON.read_text())["runs"]
    ops = json.loads(OPS_JSON.read_text())
    meta = dialer["meta"]
    rates = ",".join(f"{r:g}" for r in sorted({r["config"]["rate_rps"] for r in backend}))
    args = argparse.Namespace(contacts=meta["contacts"], cap=meta["cap"], cps=meta["cps"], rates=rates,
                              duration=backend[0]["config"]["duration_s"])
    loads = [r["load_avg_1m"]["start"] for r in dialer["runs"]] + [r["machine"]["load_avg_at_start"][0]
                                                                   for r in backend]
    busy = max(loads) > 1.5
    caveat = (f"**Preliminary**: the machine was shared (1-minute load average {min(loads):.1f}-{max(loads):.1f} "
              f"at the start of the legs on {os.cpu_count()} cores), so these figures measure CPU contention as "
              "much as the databases; rerun on a quiet machine with the commands below." if busy else
              f"1-minute load average {min(loads):.1f}-{max(loads):.1f} at the start of the legs.")
    section = f"""{SECTION_START}
## FerretDB on PostgreSQL vs SQLite (issue 21)

{provenance_line()}

{meta['at']}. FerretDB 1.24.2 with its `sqlite` handler (files, FerretDB's default pragmas) against its `postgresql`
handler on Debian's PostgreSQL 15, started by voicectl (`FERRETDB_BACKEND=postgresql`: Unix socket, trust auth,
default server settings plus pg_stat_statements). Each arm gets fresh data services; the arms run one after the
other in the same invocation. {caveat}

Database operations alone: `bench/ferretdb_ops.py`, {ops['concurrency']} at a time through pymongo against a
{ops['docs']}-document collection, no backend in between.

{ops_rows(ops['runs'])}

Dialer: `bench/dialer_bench.py`, {meta['contacts']} contacts, cap {meta['cap']} live calls, {meta['cps']} calls/s,
dialer inside the backend.

{dialer_rows(dialer['runs'])}

Backend: `bench/backend_load.py`, {backend[0]['config']['duration_s']:g} s per leg, half call-event writes, half
call-list reads, open loop.

{backend_rows(backend)}

Where the database time goes (FerretDB's `/debug/metrics` and, on PostgreSQL, pg_stat_statements; FerretDB 1.24 has
no per-command durations, `bench/db_metrics.py`):

{database_ops(backend)}

Verdict (mechanical, from the figures above):

{verdict(dialer['runs'], backend)}

Reproduce:

```
{chr(10).join(shell(c) for c in commands(args))}
.venv/bin/python bench/ferretdb_ab.py --render
```
or all of it: `.venv/bin/python bench/ferretdb_ab.py --contacts {args.contacts} --cap {args.cap} --cps {args.cps:g}
--rates {args.rates} --duration {args.duration:g}`. Raw numbers: `{OPS_JSON.relative_to(ROOT)}`, `{DIALER_JSON.relative_to(ROOT)}`,
`{BACKEND_JSON.relative_to(ROOT)}`.
{SECTION_END}"""
    replace_section(SECTION_START, SECTION_END, section, BENCHMARKS_MD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--cps", type=float, default=20.0)
    parser.add_argument("--rates", default="100,300", help="backend load legs, requests/s, comma-separated")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per backend leg")
    parser.add_argument("--render", action="store_true", help="only rewrite the section from the recorded JSON")
    args = parser.parse_args()
    if not args.render:
        BACKEND_JSON.unlink(missing_ok=True)  # the backend legs add to it, one rate after the other
        for argv in commands(args):
            print("+", shell(argv), flush=True)
            subprocess.run(argv, cwd=ROOT, check=True)  # noqa: S603
    render()
    print(f"wrote the section in {BENCHMARKS_MD.name}")


if __name__ == "__main__":
    main()
