"""Backend load: call-log writes (internal call events) and call-list reads at a fixed open-loop rate.

Starts real FerretDB and MinIO (or uses MONGODB_URI / S3_ENDPOINT), the backend as a uvicorn subprocess, then sends
requests on a fixed schedule (default 500/s for 60 s, half writes, half reads) whether or not earlier ones have
answered, so a slow server shows up as latency instead of a lower request rate. Latency is measured from each
request's scheduled time. Prints a table, writes bench/results/backend_load.json and the "Backend load" section of
BENCHMARKS.md (or, with --out, only that JSON file: the FerretDB A/B, bench/ferretdb_ab.py).

--db picks what FerretDB stores into (sqlite, postgresql, or both: one run each, same settings). Each run also
says which database operations took the time, from the database's own metrics (bench/db_metrics.py): FerretDB's
per-command counters and cursor times, SQLite's connection-pool waits, and PostgreSQL's pg_stat_statements.

Writes follow a call's life: [call.started] -> [2 turns] -> [2 turns] -> [call.ended], one batch per request.
Reads are GET /api/v1/calls?limit=50 with a user's access token (the call log's first page).

    .venv/bin/python bench/backend_load.py [--rate 500] [--duration 60] [--read-share 0.5] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.db_metrics import DatabaseProbe  # noqa: E402
from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from core.service_auth import mint_service_token  # noqa: E402
from voicectl.data_services import DataServices, LocalDataSettings, ensure_dev_secrets  # noqa: E402
from voicectl.procs import ManagedProcess, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "backend_load.json"
DB_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION_START = "<!-- backend_load:start -->"
SECTION_END = "<!-- backend_load:end -->"


@dataclass
class Samples:
    latencies_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
    return round(ordered[index], 2)


def summary(s: Samples, duration_s: float) -> dict[str, Any]:
    return {
        "requests": len(s.latencies_ms) + s.errors, "ok": len(s.latencies_ms), "errors": s.errors,
        "error_kinds": s.error_kinds, "achieved_rps": round((len(s.latencies_ms) + s.errors) / duration_s, 1),
        "p50_ms": pct(s.latencies_ms, 0.50), "p90_ms": pct(s.latencies_ms, 0.90), "p99_ms": pct(s.latencies_ms, 0.99),
        "max_ms": round(max(s.latencies_ms), 2) if s.latencies_ms else None,
        "service_p50_ms": pct(s.service_ms, 0.50), "service_p99_ms": pct(s.service_ms, 0.99),
    }


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def family_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children: PostgreSQL serves each connection from a child of its postmaster."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


class CallScript:
    """Hands out the next write batch, advancing simulated calls through their lifecycle."""

    def __init__(self, org_id: str, agent_id: str) -> None:
        self.org_id = org_id
        self.agent_id = agent_id
        self.active: list[tuple[str, int]] = []
        self.started = 0
        self.ended = 0

    def next_batch(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat()
        if len(self.active) < 50:
            call_id = uuid.uuid4().hex
            self.active.append((call_id, 0))
            self.started += 1
            return [{"type": "call.started", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": now,
                     "org_id": self.org_id, "agent_id": self.agent_id, "direction": "inbound", "carrier": "twilio",
                     "from_number": "+14155550100", "to_number": "+14155550199"}]
        call_id, step = self.active.pop(0)
        if step < 2:
            self.active.append((call_id, step + 1))
            return [{"type": "call.turn", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": now,
                     "turn_index": step * 2 + i, "speaker": "caller" if i == 0 else "agent",
                     "text": "I would like to book an appointment for Tuesday" if i == 0 else "Sure, what time?",
                     "start_ms": step * 4000 + i * 2000, "end_ms": step * 4000 + i * 2000 + 1500,
                     "latency": {"voice_to_voice_ms": 650.0 + step, "stt_final_ms": 120.0} if i else None}
                    for i in range(2)]
        self.ended += 1
        return [{"type": "call.ended", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": now,
                 "end_reason": "caller_hangup", "duration_s": 12.0,
                 "usage": {"caller_audio_s": 6.0, "agent_audio_s": 5.0, "llm_prompt_tokens": 300}}]


async def wait_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Stack:
    data: DataServices
    backend: subprocess.Popen[bytes]
    base_url: str
    mongodb_uri: str
    service_secret: str
    ferretdb_pid: int | None
    postgres_pid: int | None
    probe: DatabaseProbe


class BenchDataServices(DataServices):
    """voicectl's data services with FerretDB's metrics on a debug port, optionally with an SQLite pragma (to show
    what fsyncs cost)."""

    sqlite_pragma: str = ""
    debug_port: int = 0

    def _ferretdb(self) -> ManagedProcess:
        proc = super()._ferretdb()
        if self.sqlite_pragma:
            proc.argv = [f"{a}?_pragma={self.sqlite_pragma}" if a.startswith("--sqlite-url=") else a for a in proc.argv]
        proc.argv = [f"--debug-addr=127.0.0.1:{self.debug_port}" if a == "--debug-addr=-" else a for a in proc.argv]
        return proc


def start_stack(profile_to: Path | None = None, sqlite_synchronous: str = "", db: str = "sqlite", workers: int = 1,
                postgres_settings: dict[str, str] | None = None) -> Stack:
    """Real FerretDB (on `db`) + MinIO (or the ones MONGODB_URI / S3_ENDPOINT name) and the backend as a uvicorn
    subprocess."""
    state = Path(tempfile.mkdtemp(prefix="bench-backend-"))
    secrets = ensure_dev_secrets(state)
    base = DataServices.from_env(state, ephemeral_ports=True)
    data = BenchDataServices(state=state, ferretdb_port=base.ferretdb_port, minio_port=base.minio_port,
                             external_mongo=base.external_mongo, external_s3=base.external_s3, ferretdb_backend=db,
                             postgres_settings={**DatabaseProbe.POSTGRES_SETTINGS, **(postgres_settings or {})},
                             ephemeral=True)
    data.debug_port = free_port()
    if sqlite_synchronous:
        data.sqlite_pragma = f"synchronous({sqlite_synchronous})"
    env_data = data.start()
    port = free_port()
    env = {**os.environ, **secrets, **env_data, "VOICEAGENT_STATE_DIR": str(state), "MONGODB_DB": "bench",
           "SEED_DEMO": "false", "LOG_LEVEL": "WARNING"}
    with (state / "backend.log").open("wb") as log_file:
        profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
        backend = subprocess.Popen(
            [sys.executable, *profiler, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", "--loop", "uvloop", "--log-level", "warning",
             *(["--workers", str(workers)] if workers > 1 else [])],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    ferret_pid = next((p.running_pid() for p in data.processes if p.name == "ferretdb"), None)
    postgres_pid = next((p.running_pid() for p in data.processes if p.name == "postgres"), None)
    probe = DatabaseProbe(f"http://127.0.0.1:{data.debug_port}/debug/metrics",
                          data.postgres if db == "postgresql" and not base.external_mongo else None)
    return Stack(data, backend, f"http://127.0.0.1:{port}", env_data["MONGODB_URI"], secrets["SERVICE_TOKEN_SECRET"],
                 ferret_pid, postgres_pid, probe)


def stop_stack(stack: Stack) -> None:
    stack.backend.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly (and cProfile writes its stats)
    try:
        stack.backend.wait(10)
    except subprocess.TimeoutExpired:
        stack.backend.kill()
    stack.data.stop()


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    backend, base, ferret_pid = stack.backend, stack.base_url, stack.ferretdb_pid
    await wait_http(f"{base}/health")
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as http:
        reg = await http.post("/api/v1/auth/register", json={
            "email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password-1",
            "name": "Bench", "org_name": "Bench org"})
        reg.raise_for_status()
        user = {"Authorization": f"Bearer {reg.json()['access_token']}"}
        org_id = reg.json()["organization_id"]
        agent = await http.post("/api/v1/agents", json={"name": "Bench agent"}, headers=user)
        agent.raise_for_status()
        script = CallScript(org_id, agent.json()["id"])
        service = {"Authorization": f"Bearer {mint_service_token(stack.service_secret, 'bench')}"}
        # Some history first, so the first page of the list is full.
        for _ in range(args.preload):
            (await http.post("/internal/v1/calls/events", json={"events": script.next_batch()},
                             headers=service)).raise_for_status()

        writes, reads = Samples(), Samples()
        interval = 1.0 / args.rate
        total = int(args.rate * args.duration)
        read_every = round(1 / args.read_share) if args.read_share > 0 else 0
        tasks: list[asyncio.Task[None]] = []
        # aiohttp for the load itself: httpx's connection pool costs milliseconds of CPU per request once hundreds
        # are in flight, which on 2 cores would measure the load generator rather than the backend.
        connector = aiohttp.TCPConnector(limit=args.connections)
        timeout = aiohttp.ClientTimeout(total=10)
        session = aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout)
        read_params = {"limit": "50"}

        async def one(kind: str, scheduled: float) -> None:
            samples = reads if kind == "read" else writes
            sent = time.perf_counter()
            try:
                if kind == "read":
                    request = session.get("/api/v1/calls", params=read_params, headers=user)
                else:
                    request = session.post("/internal/v1/calls/events", json={"events": script.next_batch()},
                                           headers=service)
                async with request as resp:
                    await resp.read()
                    status = resp.status
                done = time.perf_counter()
                if status >= 400:
                    samples.error(f"HTTP {status}")
                    return
                samples.latencies_ms.append((done - scheduled) * 1000)
                samples.service_ms.append((done - sent) * 1000)
            except (aiohttp.ClientError, TimeoutError) as exc:
                samples.error(type(exc).__name__)

        cpu_before = {"backend": family_cpu_seconds(backend.pid), "ferretdb": cpu_seconds(ferret_pid or 0),
                      "postgres": family_cpu_seconds(stack.postgres_pid or 0), "load_generator": time.process_time()}
        db_before = stack.probe.start()
        started = time.perf_counter()
        next_report = started + 10
        sent_count = 0
        while sent_count < total:
            now = time.perf_counter()
            due = min(total, int((now - started) / interval) + 1)
            while sent_count < due:  # everything whose time has come, even if the loop was late
                kind = "read" if read_every and sent_count % read_every == 0 else "write"
                tasks.append(asyncio.create_task(one(kind, started + sent_count * interval)))
                sent_count += 1
            if now >= next_report:
                next_report += 10
                finished = len(writes.latencies_ms) + len(reads.latencies_ms) + writes.errors + reads.errors
                print(f"  t={now - started:5.1f}s sent={sent_count} done={finished} in flight={sent_count - finished}",
                      flush=True)
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        await session.close()
        elapsed = time.perf_counter() - started
        db_ops = stack.probe.finish(db_before, elapsed)
        cpu = {"backend": family_cpu_seconds(backend.pid) - cpu_before["backend"],
               "ferretdb": cpu_seconds(ferret_pid or 0) - cpu_before["ferretdb"],
               "postgres": family_cpu_seconds(stack.postgres_pid or 0) - cpu_before["postgres"],
               "load_generator": time.process_time() - cpu_before["load_generator"]}

        # Background application must catch up: how long until every accepted event is applied?
        drain_started = time.perf_counter()
        listed = 0
        metrics_text = ""
        waiting_for_start = 0
        while time.perf_counter() - drain_started < 60:
            try:  # an overloaded backend may still be answering the load's last requests
                page = (await http.get("/api/v1/calls", params={"limit": 1, "status": "completed"},
                                       headers=user)).json()
                metrics_text = (await http.get("/metrics")).text
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if page["items"]:
                listed = 1
            pending, waiting_for_start = await outbox_size(stack.mongodb_uri)
            if pending == 0:
                break
            await asyncio.sleep(0.5)
        drain_s = time.perf_counter() - drain_started
        server = server_latency(metrics_text)
    result = {
        "benchmark": "backend_load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_at_start": load_at_start, "load_avg_at_end": os.getloadavg()},
        "config": {"rate_rps": args.rate, "duration_s": args.duration, "read_share": args.read_share,
                   "preload_batches": args.preload, "connections": args.connections,
                   "database": f"FerretDB 1.24.2 on {DB_NAMES[stack.data.ferretdb_backend]}"
                   + (f" (synchronous={args.sqlite_synchronous})" if args.sqlite_synchronous else ""),
                   "backend": f"{args.workers} uvicorn worker{'s' if args.workers > 1 else ''}, uvloop",
                   "postgres_settings": args.postgres_setting},
        "elapsed_s": round(elapsed, 2),
        "writes": summary(writes, elapsed),
        "reads": summary(reads, elapsed),
        "all": summary(Samples(writes.latencies_ms + reads.latencies_ms, writes.service_ms + reads.service_ms,
                               writes.errors + reads.errors, {**writes.error_kinds, **reads.error_kinds}), elapsed),
        "calls_simulated": {"started": script.started, "ended": script.ended},
        "apply_backlog_drain_s": round(drain_s, 2), "list_saw_completed_calls": bool(listed),
        "events_waiting_for_their_call_start": waiting_for_start,
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "server_side": server,
        "database_ops": db_ops,
    }
    return result


async def outbox_size(uri: str) -> tuple[int, int]:
    """(events waiting to be applied now, events waiting for their call.started to arrive)."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        # Deferred: events of calls whose call.started never arrived (its request timed out on the client).
        return (await client["bench"]["outbox"].count_documents({}),
                await client["bench"]["outbox_deferred"].count_documents({}))
    finally:
        await client.close()


def server_latency(metrics_text: str) -> dict[str, Any]:
    """Mean server-side latency per route from the backend's Prometheus histogram."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = re.match(r'http_request_duration_seconds_(sum|count)\{method="(\w+)",route="([^"]+)"\} (\S+)', line)
        if match:
            kind, method, route, value = match.groups()
            key = f"{method} {route}"
            (sums if kind == "sum" else counts)[key] = float(value)
    return {k: {"requests": int(counts[k]), "mean_ms": round(sums[k] / counts[k] * 1000, 2)}
            for k in counts if counts[k] and k in sums}


def run_key(result: dict[str, Any]) -> str:
    c = result["config"]
    return f"{c['rate_rps']:g} req/s, {int(c['read_share'] * 100)} % reads, {c['database']}"


def render_run(result: dict[str, Any]) -> str:
    a = result["all"]
    goal_met = a["errors"] == 0 and (a["p99_ms"] or 1e9) < 50
    rows = "\n".join(
        f"| {name} | {s['requests']} | {s['ok']} | {round(s['ok'] / result['elapsed_s'], 1)} | {s['p50_ms']} | "
        f"{s['p90_ms']} | {s['p99_ms']} | {s['max_ms']} | {s['errors']} |"
        for name, s in (("writes: POST /internal/v1/calls/events", result["writes"]),
                        ("reads: GET /api/v1/calls?limit=50", result["reads"]), ("all", a))
    )
    load = result["machine"]
    start_load = f"{load['load_avg_at_start'][0]:.1f}" if load.get("load_avg_at_start") else "?"
    drain = result["apply_backlog_drain_s"]
    waiting = result.get("events_waiting_for_their_call_start", 0)
    drained = (f"Events still queued when the load stopped were all applied {drain} s later." if drain < 60 else
               "Events queued when the load stopped were still being applied 60 s later"
               f" ({waiting} were waiting for a call.started whose request had timed out).")
    return f"""### {run_key(result)} — goal {'met' if goal_met else 'not met'}

Run {result['date']}, {result['config']['duration_s']:g} s; machine load average {start_load}
at the start and {load['load_avg_at_end'][0]:.1f} at the end ({load['cpus']} cores, shared with other work).

| requests | sent | ok | ok/s | p50 ms | p90 ms | p99 ms | max ms | errors |
|---|---|---|---|---|---|---|---|---|
{rows}

CPU seconds during the run: backend {result['cpu_seconds']['backend']}, FerretDB {result['cpu_seconds']['ferretdb']},
load generator {result['cpu_seconds']['load_generator']}. {drained}
Latencies are of successful requests; errors are client timeouts (10 s).
"""


def store_runs(path: Path, result: dict[str, Any] | None, append: bool) -> list[dict[str, Any]]:
    """Records `result` in `path` (kept: the other runs when `append`, or all when `result` is None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    if (append or result is None) and path.exists():
        previous = json.loads(path.read_text())
        runs = [r for r in previous.get("runs", []) if result is None or run_key(r) != run_key(result)]
    if result is not None:
        runs = [result, *runs] if not append else [*runs, result]
    path.write_text(json.dumps({"benchmark": "backend_load", "runs": runs}, indent=2) + "\n")
    return runs


def write_outputs(result: dict[str, Any] | None, append: bool) -> None:
    """Records `result` (None: re-renders the section from the recorded runs)."""
    runs = store_runs(RESULTS, result, append)
    section = f"""{SECTION_START}
## Backend load (`bench/backend_load.py`)

{provenance_line()}

Call-log writes (internal call events, one batch per request, following calls through start, turns and end) and
call-list reads (first page, a user's access token), open loop: requests leave on schedule whether or not earlier
ones answered, and latency counts from the scheduled time. Real FerretDB and MinIO, the backend as one uvicorn
process, the load generator on the same machine. Goal: p99 < 50 ms and 0 errors at 500 requests/s for 60 s.

{chr(10).join(render_run(r) for r in runs)}
Raw numbers: `bench/results/backend_load.json`.
{SECTION_END}"""
    replace_section(SECTION_START, SECTION_END, section, BENCHMARKS)


def print_table(result: dict[str, Any]) -> None:
    print(f"\nbackend load: {result['config']['rate_rps']} req/s for {result['config']['duration_s']} s")
    print(f"{'':8} {'sent':>7} {'req/s':>7} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'errors':>7}")
    for name in ("writes", "reads", "all"):
        s = result[name]
        print(f"{name:8} {s['requests']:>7} {s['achieved_rps']:>7} {s['p50_ms']!s:>8} {s['p90_ms']!s:>8} "
              f"{s['p99_ms']!s:>8} {s['max_ms']!s:>8} {s['errors']:>7}")
    print(f"cpu seconds: {result['cpu_seconds']}; backlog drained {result['apply_backlog_drain_s']} s after the load")
    print(f"server-side mean latency by route: {json.dumps(result['server_side'])}")
    ops = result["database_ops"]
    print(f"database commands/s: {json.dumps(ops['commands_per_s'])}")
    print(f"cursor time by collection: {json.dumps(ops['cursor_time_by_collection'])}")
    print(f"SQLite pool waits: {json.dumps(ops['sqlite_pool_waits'])}")
    if "postgres_busy_connections_sampled" in ops:
        print(f"PostgreSQL busy connections (1 s samples): {json.dumps(ops['postgres_busy_connections_sampled'])}; "
              f"oldest transaction: {json.dumps(ops['postgres_oldest_transaction'])}")
    for row in ops.get("postgres_statements", []):
        print(f"  pg {row['share_pct']:5.1f} % {row['calls']:>7} calls {row['mean_ms']:>8} ms  {row['query']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second, writes and reads together")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--read-share", type=float, default=0.5, help="fraction of requests that are list reads")
    parser.add_argument("--preload", type=int, default=200, help="write batches sent before the measurement")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--no-record", action="store_true", help="print only; do not write results files")
    parser.add_argument("--append", action="store_true",
                        help="keep the other recorded runs (different rate/mix/database) next to this one")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes for the backend")
    parser.add_argument("--postgres-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL server setting on top of the local default's (an A/B)")
    parser.add_argument("--profile-backend", metavar="FILE", help="run the backend under cProfile, stats to FILE")
    parser.add_argument("--sqlite-synchronous", choices=["normal", "full"], default="",
                        help="start FerretDB with this SQLite synchronous pragma (default: FerretDB's own, full)")
    parser.add_argument("--render", action="store_true", help="only rewrite the BENCHMARKS.md section from the JSON")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default=LocalDataSettings().ferretdb_backend,
                        help="what FerretDB stores into (default: FERRETDB_BACKEND); both: one run each")
    parser.add_argument("--out", metavar="JSON", type=Path,
                        help="record the runs in this file (next to its other runs) and leave BENCHMARKS.md alone")
    args = parser.parse_args()
    if args.render:
        write_outputs(None, append=True)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the servers
    for i, db in enumerate(["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        stack = start_stack(Path(args.profile_backend).resolve() if args.profile_backend else None,
                            args.sqlite_synchronous, db, args.workers,
                            dict(item.split("=", 1) for item in args.postgres_setting))
        try:
            result = asyncio.run(run(args, stack))
        finally:
            stop_stack(stack)
        print_table(result)
        if args.out:
            store_runs(args.out, result, append=True)
            print(f"wrote {args.out}")
        elif not args.no_record:
            write_outputs(result, args.append or i > 0)
            print(f"wrote {RESULTS.relative_to(ROOT)} and the section in {BENCHMARKS.name}")


if __name__ == "__main__":
    main()
