"""Dialer benchmark: a 1,000-contact campaign against the fake carrier with short calls.

Starts real FerretDB and MinIO (or uses MONGODB_URI / S3_ENDPOINT), the backend as a uvicorn subprocess (carrier
callbacks go to it), dialers (inside the backend process, or as separate `python -m backend.campaigns` processes),
and the fake carrier in this process (a test double of the Twilio and Vobiz REST APIs). Calls carry no media (the
fake carrier's `media=False` callees): this measures the dialer, the carrier API and the callbacks, not the voice
pipeline. Contacts: 70 % answer and talk 0.5-1.5 s, 10 % busy, 10 % no answer, 10 % answering machines (async AMD,
policy hang up); no retries, so there is exactly one dial per contact.

Reports, from the carrier's own log (its clock, its view of live calls):
- placed rate against the calls-per-second cap (overall, and the busiest 1-second window);
- cap violations: moments with more live calls than the campaign cap (must be 0);
- the delay from a slot freeing (the call's final callback processed and its outcome decided; the slot document
  is deleted a few writes later) to the next dial reaching the carrier, while contacts were waiting.
Prints a table, writes bench/results/dialer.json and the "Dialer" section of BENCHMARKS.md (or, with --out, only
that JSON file: the FerretDB A/B, bench/ferretdb_ab.py). --db picks what FerretDB stores into (sqlite, postgresql,
or both: every run on each, same settings, each database started fresh).

    .venv/bin/python bench/dialer_bench.py [--contacts 1000] [--cap 20] [--cps 20] [--runs backend,dialers2]
                                           [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from bisect import bisect_right
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient  # noqa: E402

from backend.campaigns.collections import LEASES, MARKS, SLOTS  # noqa: E402
from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import BENCHMARKS_MD, replace_section  # noqa: E402
from voice_server.testing.fake_carrier import FakeCall, FakeCarrier, ScriptedCallee  # noqa: E402
from voice_server.testing.provision import carrier_api_env  # noqa: E402
from voice_server.testing.simulator import CarrierAccount  # noqa: E402
from voicectl.data_services import DataServices, LocalDataSettings, ensure_dev_secrets  # noqa: E402
from voicectl.procs import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dialer.json"
DB_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
BENCHMARKS = BENCHMARKS_MD
SECTION_START = "<!-- dialer:start -->"
SECTION_END = "<!-- dialer:end -->"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))], 1)


def numbers(count: int) -> list[str]:
    import phonenumbers

    out: set[str] = set()
    while len(out) < count:
        raw = f"+1{random.choice(['415', '212', '312', '617', '206'])}{random.randint(2000000, 9999999)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(raw)):
            out.add(raw)
    return sorted(out)


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{url} did not come up; see {log}")


async def provision(http: httpx.AsyncClient, base: str, carrier: FakeCarrier) -> tuple[dict[str, str], str, str]:
    body = (await http.post(f"{base}/api/v1/auth/register", json={
        "email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "pw-" + secrets.token_urlsafe(12),
        "name": "Bench", "org_name": "Bench org"})).json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    agent = (await http.post(f"{base}/api/v1/agents", headers=headers, json={"name": "Bench", "config": {}})).json()
    account = CarrierAccount("twilio", "AC" + secrets.token_hex(16), secrets.token_hex(16), numbers={"+14155550100"})
    carrier.accounts[("twilio", account.account_id)] = account
    resp = await http.put(f"{base}/api/v1/org/carrier-credentials/twilio", headers=headers, json={
        "account_id": account.account_id, "auth_token": account.auth_token})
    resp.raise_for_status()
    number = (await http.post(f"{base}/api/v1/phone-numbers", headers=headers,
                              json={"number": "+14155550100", "carrier": "twilio"})).json()
    await http.put(f"{base}/api/v1/campaign-settings", headers=headers, json={"max_concurrent_calls": 10000})
    return headers, agent["id"], number["id"]


def analyse(calls: list[FakeCall], releases: list[float], cap: int, cps: float) -> dict[str, Any]:
    created = sorted(c.created_wall for c in calls)
    span = created[-1] - created[0]
    # Busiest 1-second window of dials.
    busiest = max(bisect_right(created, t + 1.0 - 1e-9) - i for i, t in enumerate(created))
    per_second: dict[int, int] = {}
    for t in created:
        per_second[int(t - created[0])] = per_second.get(int(t - created[0]), 0) + 1
    full_seconds = [n for s, n in per_second.items() if 0 < s < max(per_second)]
    # Live calls over time from the carrier's own life spans; a violation is a moment above the cap.
    edges = sorted([(c.created_wall, 1) for c in calls] + [(c.ended_wall or float("inf"), -1) for c in calls],
                   key=lambda e: (e[0], e[1]))
    live = peak = violations = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
        if step > 0 and live > cap:
            violations += 1
    # Slot freed -> next dial: match each release (while contacts were still waiting) with the first later dial
    # not yet matched, in order.
    last_dial = created[-1]
    delays: list[float] = []
    j = 0
    for r in sorted(t for t in releases if t < last_dial):
        while j < len(created) and created[j] <= r:
            j += 1
        if j == len(created):
            break
        delays.append((created[j] - r) * 1000)
        j += 1
    # The goal's bound: the lower of the calls-per-second cap and cap / (mean call time + a 250 ms turnaround).
    durations = [c.ended_wall - c.created_wall for c in calls if c.ended_wall is not None]
    call_s = statistics.mean(durations) if durations else 0.0
    bound = min(cps, cap / (call_s + 0.25))
    placed = (len(created) - 1) / span if span else 0.0
    return {
        "mean_call_s": round(call_s, 3), "bound_per_s": round(bound, 2),
        "of_bound_pct": round(100 * placed / bound, 1) if bound else None,
        "dials": len(calls), "span_s": round(span, 2),
        "placed_per_s": round((len(created) - 1) / span, 2) if span else None, "cps_cap": cps,
        "placed_per_s_median_second": statistics.median(full_seconds) if full_seconds else None,
        "busiest_1s_window": busiest, "peak_live_calls": peak, "concurrency_cap": cap,
        "cap_violations": violations,
        "slot_free_to_dial_ms": {"n": len(delays), "p50": pct(delays, 0.5), "p90": pct(delays, 0.9),
                                 "p95": pct(delays, 0.95), "p99": pct(delays, 0.99),
                                 "max": round(max(delays), 1) if delays else None},
    }


async def run_one(name: str, dialers: int, args: argparse.Namespace, env: dict[str, str], logs: Path,
                  carrier: FakeCarrier) -> dict[str, Any]:
    db_name = f"bench_dialer_{uuid.uuid4().hex[:6]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    common = {**env, **carrier_api_env(carrier.base_url), "MONGODB_DB": db_name, "SEED_DEMO": "false", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
              "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"), "CAMPAIGN_CALLBACK_BASE_URL": base, "PUBLIC_BASE_URL": base,
              "CAMPAIGN_ANSWER_BASE_URL": "http://127.0.0.1:9/unused", "PYTHONUNBUFFERED": "1"}
    backend = spawn([sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port),
                     "--no-access-log", "--loop", "uvloop"],
                    {**common, "DIALER_ENABLED": "true" if dialers == 0 else "false"}, logs / f"{name}-backend.log")
    procs = [backend]
    try:
        await wait_http(f"{base}/health/live", backend, logs / f"{name}-backend.log")
        for i in range(dialers):
            profile = ["-m", "cProfile", "-o", str(logs / f"{name}-dialer{i}.prof")] \
                if os.environ.get("BENCH_PROFILE_DIALER") else []
            procs.append(spawn([sys.executable, *profile, "-m", "backend.campaigns"],
                               {**common, "DIALER_ID": f"bench-{i}"}, logs / f"{name}-dialer{i}.log"))
        async with httpx.AsyncClient(timeout=60) as http:
            headers, agent_id, number_id = await provision(http, base, carrier)
            contacts = numbers(args.contacts)
            rng = random.Random(7)
            for number in contacts:
                roll = rng.random()
                if roll < 0.7:
                    callee = ScriptedCallee(outcome="human", ring_s=0.2, media=False,
                                            hangup_after_answer_s=rng.uniform(0.5, 1.5))
                elif roll < 0.8:
                    callee = ScriptedCallee(outcome="busy", ring_s=0.2)
                elif roll < 0.9:
                    callee = ScriptedCallee(outcome="no-answer", ring_s=0.2)
                else:
                    callee = ScriptedCallee(outcome="voicemail", ring_s=0.2, media=False, amd_delay_s=0.3,
                                            hangup_after_answer_s=5.0)
                carrier.callees[number] = callee
            always = {d: [{"start": "00:00", "end": "24:00"}] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
            no_retry = {"max_attempts": 1, "delays_s": [0]}
            campaign = (await http.post(f"{base}/api/v1/campaigns", headers=headers, json={
                "name": f"bench {name}", "agent_id": agent_id, "caller_number_ids": [number_id],
                "windows": {"timezone": "UTC", "days": always}, "max_concurrent_calls": args.cap,
                "calls_per_second": args.cps, "ring_timeout_s": 10, "max_call_duration_s": 60,
                "retry": {"busy": no_retry, "no_answer": no_retry, "failed": no_retry, "voicemail": no_retry},
                "voicemail": {"detect": True, "action": "hang_up"}})).json()
            cid = campaign["id"]
            csv_body = ("phone\n" + "\n".join(contacts) + "\n").encode()
            t = time.monotonic()
            upload = await http.post(f"{base}/api/v1/campaigns/{cid}/contacts", headers=headers,
                                     files={"file": ("c.csv", csv_body, "text/csv")})
            upload.raise_for_status()
            import_s = time.monotonic() - t
            started = time.time()
            load_before = os.getloadavg()[0]
            (await http.post(f"{base}/api/v1/campaigns/{cid}/start", headers=headers)).raise_for_status()
            deadline = time.monotonic() + args.limit
            progress: dict[str, Any] = {}
            while time.monotonic() < deadline:
                progress = (await http.get(f"{base}/api/v1/campaigns/{cid}/progress", headers=headers)).json()
                if progress["status"] == "completed" and progress["live_calls"] == 0:
                    break
                await asyncio.sleep(5.0)  # the progress query scans the contacts: do not load the database
            finished = time.time()
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["MONGODB_URI"], tz_aware=True)
        try:
            db = mongo[db_name]
            # A call's slot is released a few writes after its outcome is decided (the `final` mark): measuring from
            # the decision slightly overstates the delay, never understates it.
            releases = [d["at"].timestamp() async for d in db[MARKS].find({"campaign_id": cid, "kind": "final"},
                                                                         {"at": 1})]
            leftovers = {"leases": await db[LEASES].count_documents({"campaign_id": cid}),
                         "slots": await db[SLOTS].count_documents({"campaign_id": cid})}
        finally:
            await mongo.close()
        calls = [c for c in carrier.calls.values() if c.to_number in set(contacts)]
        per_number: dict[str, int] = {}
        for c in calls:
            per_number[c.to_number] = per_number.get(c.to_number, 0) + 1
        result = analyse(calls, releases, args.cap, args.cps)
        result.update({
            "run": name, "dialer_processes": dialers or 1, "dialer_in_backend": dialers == 0,
            "contacts": args.contacts, "completed": progress.get("status") == "completed",
            "by_status": progress.get("by_status"), "double_dials": sum(1 for n in per_number.values() if n > 1),
            "never_dialled": args.contacts - len(per_number), "wall_s": round(finished - started, 1),
            "import_s": round(import_s, 2), "leftover": leftovers,
            "load_avg_1m": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        })
        return result
    finally:
        for proc in reversed(procs):
            stop(proc)


def table(runs: list[dict[str, Any]]) -> str:
    head = ("| run | dialers | dials | placed/s (cap) | bound/s (% reached) | busiest 1 s | peak live (cap) | "
            "cap violations | slot free -> dial p50 / p95 / max ms | double dials | wall s |")
    lines = [head, "|" + "---|" * 11]
    for r in runs:
        d = r["slot_free_to_dial_ms"]
        where = "in backend" if r["dialer_in_backend"] else f"{r['dialer_processes']} standalone"
        lines.append(f"| {r['run']} | {where} | {r['dials']} | {r['placed_per_s']} ({r['cps_cap']}) | "
                     f"{r['bound_per_s']} ({r['of_bound_pct']} %) | {r['busiest_1s_window']} | "
                     f"{r['peak_live_calls']} ({r['concurrency_cap']}) | "
                     f"{r['cap_violations']} | {d['p50']} / {d['p95']} / {d['max']} | {r['double_dials']} | "
                     f"{r['wall_s']} |")
    return "\n".join(lines)


def record(path: Path, runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    databases = sorted({r["database"] for r in runs})
    meta = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "database": "FerretDB 1.24 (" + ", ".join(DB_NAMES[d] for d in databases) + ")",
            "contacts": args.contacts, "cap": args.cap, "cps": args.cps,
            "load_avg": [round(v, 2) for v in os.getloadavg()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")
    return meta


def write_outputs(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    meta = record(RESULTS, runs, args)
    section = f"""{SECTION_START}
## Dialer (`bench/dialer_bench.py`)

{provenance_line()}

{meta['at']}, {meta['cpus']} CPUs, {meta['database']}. {args.contacts} contacts against the fake carrier (calls
without media: 70 % talk 0.5-1.5 s, 10 % busy, 10 % no answer, 10 % answering machine hung up on by AMD), campaign
cap {args.cap} live calls, {args.cps} calls/s, no retries. Figures from the carrier's own log; "slot free -> dial" is
the time from a call's outcome being decided (final callback processed; its slot is deleted a few writes later) to
the next dial reaching the carrier while contacts were waiting.

{table(runs)}

Cap violations must be 0 and double dials 0. Dials are paced with one token per 1/cps-second tick shared by all
dialers (a dial that would leave late takes a fresh tick), so the placed rate stays at or under the cap without
bursts; tick alignment lets a sliding 1-second window hold cps + 1 dials, and the carrier's clock adds network
jitter. When the concurrency cap binds first, the placed rate is about cap / (call time + slot turnaround). A few
claims per campaign wait ready for the next free slot, so a freed slot costs a slot insert, the call's registration,
the rate token and the carrier request; a dialer inside the backend is woken the moment a callback frees a slot, a
standalone one on its next poll (DIALER_POLL_INTERVAL_S, 0.2 s by default).

Each dial and call end writes a dozen small documents (claims, slots, marks) next to the backend's call log, so the
database's round trips set the turnaround: on FerretDB 1.x over SQLite (one writer, a scan for every update or delete
that is not by `_id`) the rate stays far below its bound; over PostgreSQL (the local default) it reaches it on quiet
cores. The verdict follows the machine's load: the run's 1-minute load average is in `bench/results/dialer.json`
(`runs[].load_avg_1m`).
{SECTION_END}"""
    replace_section(SECTION_START, SECTION_END, section, BENCHMARKS)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--cps", type=float, default=20.0)
    parser.add_argument("--runs", default="backend,dialers2",
                        help="comma-separated: backend (dialer inside the backend) and/or dialersN (N processes)")
    parser.add_argument("--limit", type=float, default=600, help="seconds allowed per run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default=LocalDataSettings().ferretdb_backend,
                        help="what FerretDB stores into (default: FERRETDB_BACKEND); both: every run on each")
    parser.add_argument("--out", metavar="JSON", type=Path,
                        help="write the runs to this file and leave bench/results/dialer.json and BENCHMARKS.md alone")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="dialer-bench-"))
    logs = state / "logs"
    logs.mkdir()
    carrier = FakeCarrier([])
    await carrier.start(free_port())
    runs: list[dict[str, Any]] = []
    try:
        for db in ["sqlite", "postgresql"] if args.db == "both" else [args.db]:
            runs += await runs_on(db, state / db, args, logs, carrier)
    finally:
        await carrier.stop()
    print(table(runs))
    if args.out:
        record(args.out, runs, args)
        print(f"wrote {args.out} (logs in {logs})")
    elif not args.no_write:
        write_outputs(runs, args)
        print(f"wrote {RESULTS.relative_to(ROOT)} and the section in {BENCHMARKS.name} (logs in {logs})")


async def runs_on(db: str, state: Path, args: argparse.Namespace, logs: Path,
                  carrier: FakeCarrier) -> list[dict[str, Any]]:
    """Every requested run against fresh data services whose FerretDB stores into `db`."""
    env = dict(os.environ)
    env["VOICEAGENT_STATE_DIR"] = str(state)
    for key, value in ensure_dev_secrets(state).items():
        env.setdefault(key, value)
    services = DataServices.from_env(state, ephemeral_ports=True)
    services.ferretdb_backend = db
    os.environ.update({k: v for k, v in env.items() if k not in os.environ})
    env.update(services.start())
    runs: list[dict[str, Any]] = []
    try:
        for name in args.runs.split(","):
            name = name.strip()
            dialers = 0 if name == "backend" else int(name.removeprefix("dialers"))
            print(f"run {name} on {DB_NAMES[db]}: {args.contacts} contacts, cap {args.cap}, {args.cps} calls/s ...",
                  flush=True)
            runs.append({**await run_one(f"{name}-{db}", dialers, args, env, logs, carrier), "database": db})
            print(json.dumps(runs[-1], indent=1), flush=True)
    finally:
        services.stop()
    return runs


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers it started on the way out
    asyncio.run(main())
