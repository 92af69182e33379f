"""Voice-to-voice latency of a phone call on the embedded CPU stack, with a per-stage breakdown.

Wraps the telephony simulator (voice_server/testing, a test double of Twilio/Vobiz that follows the protocol
reference): it starts FerretDB + MinIO, the speech servers (Whisper tiny.en ASR, Piper TTS, SmolLM2 LLM), the backend
and the voice server on free ports (unless --voice-url/--backend-url/--tts-url point at a running stack), sets up a
line through the backend's API, then places `--calls` sequential calls (each `--concurrency` wide) asking `--turns`
spoken questions (Piper speech, 8 kHz μ-law, streamed in real time in 20 ms frames).

Voice-to-voice = from the end of the caller's speech in the audio the simulator sent to the first agent audio byte
received on the socket. Stages (see voice_server/testing/runner.py): VAD stop, smart-turn, STT final, turn end,
LLM first token, TTS first audio, send, resampler hold-back.

Prints a table, writes bench/results/voice_latency.json and the "Voice-to-voice latency" section of BENCHMARKS.md.
Usage: .venv/bin/python bench/voice_latency.py [--turns 20] [--concurrency 1] [--carrier twilio] [--nice -10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import machine, provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from voice_server.testing.agent_tests import caller_speech  # noqa: E402
from voice_server.testing.fake_carrier import FakeCarrier  # noqa: E402
from voice_server.testing.provision import carrier_api_env, provision_line  # noqa: E402
from voice_server.testing.runner import (  # noqa: E402
    DEFAULT_QUESTIONS,
    SimulationConfig,
    percentile,
    run_simulation,
    synthesize_questions,
)
from voicectl.data_services import DataServices, ensure_dev_secrets  # noqa: E402
from voicectl.launch import (  # noqa: E402
    asr_process,
    embed_process,
    llm_process,
    tts_process,
    voice_server_process,  # noqa: E402
)
from voicectl.procs import ManagedProcess, free_port, http_ok  # noqa: E402
from voicectl.speech_auth import local_service_secret  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "voice_latency.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
START, END = "<!-- voice-latency:start -->", "<!-- voice-latency:end -->"
# --knowledge writes its own results and section, so the main latency section stays as measured.
KNOWLEDGE_RESULTS = ROOT / "bench" / "results" / "voice_latency_knowledge.json"
CALLERS_START, CALLERS_END = "<!-- voice-latency-callers:start -->", "<!-- voice-latency-callers:end -->"
CALLERS_RESULTS = ROOT / "bench" / "results" / "voice_latency_callers.json"
PIPER = "piper"
FALLBACK_MS = 1500.0  # a turn end this late waited for smart-turn's 2 s fallback (a normal one closes in ~0.5 s)


def variant(report: dict[str, Any]) -> tuple[Path, str, str, str]:
    """Results file, section markers and title: the default run, --knowledge, or other caller voices."""
    if report.get("knowledge"):
        return (KNOWLEDGE_RESULTS, KNOWLEDGE_START, KNOWLEDGE_END,
                "## Knowledge base: voice-to-voice latency with and without (`bench/voice_latency.py --knowledge`)")
    if report.get("caller_voices", [PIPER]) != [PIPER]:
        return (CALLERS_RESULTS, CALLERS_START, CALLERS_END,
                "## Voice-to-voice latency on caller voices other than the agent's (`bench/voice_latency.py "
                "--caller-voice`)")
    return RESULTS, START, END, "## Voice-to-voice latency (one call, embedded CPU stack)"


def caller_questions(voice: str, texts: list[str], piper: list[bytes]) -> list[bytes]:
    """The questions in one caller voice: `piper` (the agent's own synthesiser) or espeak-ng `NAME:WPM`."""
    if voice == PIPER:
        return piper
    name, _, wpm = voice.partition(":")
    return [caller_speech(text, (name, int(wpm or 160))) for text in texts]
KNOWLEDGE_START, KNOWLEDGE_END = "<!-- voice-latency-knowledge:start -->", "<!-- voice-latency-knowledge:end -->"
GOAL_P50_MS, GOAL_P95_MS = 800, 1200

MORE_QUESTIONS = (
    "What time do you close today?",
    "I would like to cancel my booking.",
    "Are you open on public holidays?",
    "Can you send me a confirmation by text message?",
    "How do I get to your office by bus?",
    "Do you have any appointments left this week?",
    "Can I bring my child with me?",
    "What is your phone number for emergencies?",
    "Is the first consultation free?",
    "Thanks, that is all I needed.",
)

# The test agent: short answers (max 40 tokens) so one turn does not run into the next on 2 cores.
AGENT = {
    "system_prompt": "You are the receptionist of Test Clinic. Answer in one short sentence.",
    "greeting": "Hello, thank you for calling Test Clinic. How can I help?",
    "llm": {"max_tokens": 40, "temperature": 0.2},
    "silence": {"reminder_after_s": 30.0, "max_reminders": 0},
}


class CpuProbe:
    """How much CPU we actually get: a fixed single-core loop timed every second (the machine may be shared)."""

    def __init__(self) -> None:
        self.samples_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            t = time.perf_counter()
            x = 0
            for i in range(300_000):
                x += i * i
            self.samples_ms.append((time.perf_counter() - t) * 1000)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=5)
        s = sorted(self.samples_ms) or [0.0]
        return {"min_ms": round(s[0], 1), "median_ms": round(statistics.median(s), 1), "max_ms": round(s[-1], 1)}


# The latency levers, and the voice server settings that switch them off for the interleaved baseline.
BASELINE_ENV = {"STT_INTERIMS": "always"}
LEVERS = "interim transcripts only while the agent speaks"


@dataclass
class Stack:
    voice_url: str
    backend_url: str
    tts_url: str
    baseline_url: str = ""  # a second voice server with the levers off (BASELINE_ENV), same speech servers
    asr_metrics_url: str = ""
    procs: list[ManagedProcess] = field(default_factory=list)
    data: DataServices | None = None
    fake_carrier_port: int = field(default_factory=free_port)  # the backend asks it about number ownership

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if self.data is not None:
            self.data.stop()


def start_stack(state: Path, baseline_env: dict[str, str] | None, levers_env: dict[str, str]) -> Stack:
    os.environ["VOICEAGENT_STATE_DIR"] = str(state)
    for key, value in ensure_dev_secrets(state).items():
        os.environ.setdefault(key, value)
    data = DataServices.from_env(state, ephemeral_ports=True)
    env = data.start()
    os.environ.update(env)
    stack = Stack("", "", "", data=data)
    run = state / "run"
    base_env = {"VOICEAGENT_STATE_DIR": str(state), "LOG_LEVEL": "WARNING", **env}
    try:
        asr_port, asr_health, tts_port, llm_port = free_port(), free_port(), free_port(), free_port()
        embed_port = free_port()
        for proc in (asr_process(run, port=asr_port, health_port=asr_health, env=base_env),
                     tts_process(run, port=tts_port, env=base_env),
                     llm_process(run, port=llm_port, env=base_env),
                     embed_process(run, port=embed_port, env=base_env)):
            proc.start_timeout = 180
            proc.start()
            stack.procs.append(proc)
        base_env["EMBEDDINGS_BASE_URL"] = f"http://127.0.0.1:{embed_port}/v1"  # knowledge bases (--knowledge)
        backend_port = free_port()
        backend = ManagedProcess(
            "backend", [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port",
                        str(backend_port), "--no-access-log", "--loop", "uvloop"],
            run, ports=[backend_port],
            env={**base_env, **carrier_api_env(f"http://127.0.0.1:{stack.fake_carrier_port}"), "SEED_DEMO": "false",
                 "MONGODB_DB": f"bench_{uuid.uuid4().hex[:8]}",
                 "REGISTER_PER_IP_PER_HOUR": "100000"},
            ready=lambda: http_ok(f"http://127.0.0.1:{backend_port}/health"), start_timeout=120)
        backend.start()
        stack.procs.append(backend)
        stack.backend_url = f"http://127.0.0.1:{backend_port}"
        stack.tts_url = f"http://127.0.0.1:{tts_port}"
        stack.asr_metrics_url = f"http://127.0.0.1:{asr_health}/metrics"
        voice_env = {**base_env, "BACKEND_URL": stack.backend_url, "RIVA_SERVER": f"127.0.0.1:{asr_port}",
                     "TTS_URL": stack.tts_url, "LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1"}
        voice_port = free_port()
        voice = voice_server_process(run, port=voice_port, env={
            **voice_env, **levers_env, "VOICE_SPOOL_DIR": str(state / "voice-spool")})
        voice.start()
        stack.procs.append(voice)
        stack.voice_url = f"http://127.0.0.1:{voice_port}"
        if baseline_env is not None:
            base_port = free_port()
            base = voice_server_process(run, port=base_port, name="voice-server-baseline", env={
                **voice_env, **baseline_env, "VOICE_SPOOL_DIR": str(state / "voice-spool-baseline"),
                "VOICE_SERVER_ID": "voice-baseline"})
            base.start()
            stack.procs.append(base)
            stack.baseline_url = f"http://127.0.0.1:{base_port}"
    except Exception:
        stack.stop()
        raise
    return stack


async def run_bench(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    fake = FakeCarrier([])
    await fake.start(stack.fake_carrier_port)  # the backend checks number ownership with it
    try:
        async with httpx.AsyncClient(timeout=120.0) as http:
            line = await provision_line(http, stack.backend_url, carrier=args.carrier, fake_carrier=fake,
                                        agent_config=AGENT)
            kb_line = await knowledge_line(http, stack, args, fake, line) if args.knowledge else None
            texts = list(DEFAULT_QUESTIONS + MORE_QUESTIONS)
            piper = await synthesize_questions(http, stack.tts_url, texts, local_service_secret())
            by_voice = {voice: caller_questions(voice, texts, piper) for voice in args.caller_voice}
        from voice_server.testing.runner import SimulationResult

        merged = {name: SimulationResult(reports=[], samples=[], greeting_ms=[], errors=[])
                  for name in ("levers", "baseline")}
        voice_of: dict[str, list[str]] = {"levers": [], "baseline": []}  # each sample's caller voice
        servers = [("levers", stack.voice_url, line)]
        if kb_line is not None:  # same voice server; "levers" = the agent with a knowledge base
            servers = [("levers", stack.voice_url, kb_line), ("baseline", stack.voice_url, line)]
        elif stack.baseline_url:
            servers.append(("baseline", stack.baseline_url, line))
        for call in range(args.calls):
            voice = args.caller_voice[call % len(args.caller_voice)]
            questions = by_voice[voice]
            # Interleaved, and in alternating order (ABBA...), so a busier minute on the shared machine hits both.
            for name, url, on in servers if call % 2 else servers[::-1]:
                cfg = SimulationConfig(voice_url=url, carrier=args.carrier, to_number=on.number,
                                       account=on.account, questions=questions[call:] + questions[:call],
                                       concurrency=args.concurrency, turns=args.turns, vobiz_format=args.format,
                                       service_token_secret=os.environ.get("SERVICE_TOKEN_SECRET"),
                                       max_duration_s=60 + 15 * args.turns)
                result = await run_simulation(cfg, fake)
                into = merged[name]
                into.samples.extend(result.samples)
                voice_of[name].extend([voice] * len(result.samples))
                into.reports.extend(result.reports)
                into.errors.extend(result.errors)
                into.greeting_ms.extend(result.greeting_ms)
                print(f"call {call + 1}/{args.calls} ({name}, caller {voice}): {len(result.samples)} turns")
        asr = await asr_server_means(stack.asr_metrics_url)
        guesses = {name: await speculative_replies(url) for name, url, _ in servers}
    finally:
        await fake.stop()
    return {"result": merged["levers"], "baseline": merged["baseline"] if len(servers) > 1 else None,
            "line": line.number, "asr_server": asr, "voice_of": voice_of, "speculative_replies": guesses}


def reply_pauses(reports: list[Any], lo_s: float = 0.3, hi_s: float = 0.7) -> dict[str, float]:
    """Silences inside the agent's replies as the caller heard them: gaps between its speech segments longer than
    `lo_s` (a word gap or a comma is shorter) and shorter than `hi_s` (the simulator's "agent has finished", so a
    longer gap lies between replies). An early first TTS chunk that the next one does not follow in time shows here."""
    gaps = [b[0] - a[1] for r in reports for a, b in zip(r.heard_segments, r.heard_segments[1:], strict=False)]
    inside = sorted(g for g in gaps if lo_s <= g < hi_s)
    answers = sum(len(r.answers) for r in reports) or 1
    return {"pauses": len(inside), "answers": answers, "per_answer": round(len(inside) / answers, 2),
            "max_ms": round(1000 * inside[-1], 1) if inside else 0.0}


def by_voice(samples: list[Any], voices: list[str]) -> list[dict[str, Any]]:
    """Per caller voice: voice-to-voice and turn end, and how many turns waited for smart-turn's fallback."""
    rows = []
    for voice in dict.fromkeys(voices):
        mine = [s for s, v in zip(samples, voices, strict=True) if v == voice]
        v2v = [s.voice_to_voice_ms for s in mine if s.voice_to_voice_ms is not None]
        ends = [s.stages["turn_end"] for s in mine if s.stages.get("turn_end") is not None]
        rows.append({"voice": voice, "n": len(v2v), "v2v_p50": percentile(v2v, 50), "v2v_p95": percentile(v2v, 95),
                     "turn_end_p50": percentile(ends, 50), "turn_end_p95": percentile(ends, 95),
                     "fallback_turns": sum(1 for e in ends if e > FALLBACK_MS)})
    return rows


def voices_markdown(report: dict[str, Any]) -> list[str]:
    rows = report.get("by_voice")
    if not rows or report.get("caller_voices", [PIPER]) == [PIPER]:
        return []
    lines = ["Per caller voice (`piper` is the agent's own synthesiser; the others are espeak-ng `voice:words per "
             f"minute`). A turn end later than {FALLBACK_MS:.0f} ms waited for smart-turn's 2 s fallback "
             "(it judged a finished caller unfinished).", "",
             "| caller voice | turns | voice-to-voice p50 / p95 ms | turn end p50 / p95 ms | turns on the fallback |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['voice']} | {r['n']} | {r['v2v_p50']} / {r['v2v_p95']} | {r['turn_end_p50']} / "
              f"{r['turn_end_p95']} | {r['fallback_turns']} |" for r in rows]
    return [*lines, ""]


KNOWLEDGE_DOCS = ROOT / "tests" / "knowledge_data"


async def knowledge_line(http: httpx.AsyncClient, stack: Stack, args: argparse.Namespace, fake: FakeCarrier,
                         plain: Any) -> Any:
    """The same agent with the test clinic's documents as its knowledge base (retrieval on every turn)."""
    headers = plain.headers
    kb = (await http.post(f"{stack.backend_url}/api/v1/knowledge-bases", headers=headers,
                          json={"name": "Clinic"})).json()["id"]
    for path in sorted(KNOWLEDGE_DOCS.iterdir()):
        resp = await http.post(f"{stack.backend_url}/api/v1/knowledge-bases/{kb}/sources", headers=headers,
                               files={"file": (path.name, path.read_bytes())})
        resp.raise_for_status()
    for _ in range(600):
        sources = (await http.get(f"{stack.backend_url}/api/v1/knowledge-bases/{kb}/sources", headers=headers)).json()
        if all(s["status"] == "ready" for s in sources):
            break
        if any(s["status"] == "failed" for s in sources):
            raise RuntimeError(f"knowledge source failed: {sources}")
        await asyncio.sleep(0.5)
    line = await provision_line(http, stack.backend_url, carrier=args.carrier, fake_carrier=fake,
                                agent_config={**AGENT, "knowledge": {"knowledge_base_ids": [kb], "top_k": 3}},
                                access_token=plain.access_token, org_id=plain.org_id,
                                # the same carrier account: a new one would replace the organisation's credentials
                                # and the plain line's calls would fail their signature check
                                account=plain.account)
    return line


async def asr_server_means(metrics_url: str) -> dict[str, float]:
    """The ASR server's own view (both voice servers' calls): means of its final latency and decode times, ms.

    The final's latency there runs from the arrival of the audio that ended the speech to the result being sent,
    so `stt_final` minus it is what the pipeline adds (audio in, results back, queues and CPU contention).
    """
    from bench.voice_concurrency import parse_metrics

    async with httpx.AsyncClient(timeout=10.0) as http:
        m = parse_metrics((await http.get(metrics_url)).text)
    means: dict[str, float] = {}
    for key, label in (("asr_final_latency_seconds", "final_latency"),
                       ("asr_decode_seconds{kind=speculative}", "decode_speculative"),
                       ("asr_decode_seconds{kind=final}", "decode_final"),
                       ("asr_decode_seconds{kind=interim}", "decode_interim")):
        name, _, labels = key.partition("{")
        suffix = "{" + labels if labels else ""
        count = m.get(f"{name}_count{suffix}", 0.0)
        if count:
            means[f"{label}_mean_ms"] = round(1000 * m[f"{name}_sum{suffix}"] / count, 1)
            means[f"{label}_n"] = count
    return means


async def speculative_replies(voice_url: str) -> dict[str, int]:
    """The voice server's replies started before the turn end, confirmed and withdrawn (wasted LLM work)."""
    from bench.voice_concurrency import parse_metrics

    async with httpx.AsyncClient(timeout=10.0) as http:
        m = parse_metrics((await http.get(f"{voice_url}/metrics")).text)
    return {outcome: int(m.get(f"voice_speculative_replies_total{{outcome={outcome}}}", 0))
            for outcome in ("confirmed", "withdrawn")}


def ab_rows(levers: dict[str, dict[str, float | None]],
            baseline: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    rows = []
    for stage in levers:
        a, b = baseline[stage]["p50"], levers[stage]["p50"]
        ratio = round(b / a, 2) if a and b is not None else None
        rows.append({"stage": stage, "baseline_p50": a, "levers_p50": b, "ratio": ratio,
                     "baseline_p95": baseline[stage]["p95"], "levers_p95": levers[stage]["p95"]})
    return rows


def markdown(report: dict[str, Any]) -> str:
    stages = report["stages"]
    v2v = stages["voice_to_voice"]
    met = (v2v["p50"] is not None and v2v["p50"] <= GOAL_P50_MS and v2v["p95"] is not None
           and v2v["p95"] <= GOAL_P95_MS)
    rows = "\n".join(
        f"| {name} | {int(st['n'] or 0)} | {st['p50'] if st['p50'] is not None else '-'} | "
        f"{st['p95'] if st['p95'] is not None else '-'} | {st['mean'] if st['mean'] is not None else '-'} | "
        f"{STAGE_NOTES.get(name, '')} |"
        for name, st in stages.items())
    cpu = report["cpu_probe"]
    results, start, end, title = variant(report)
    return "\n".join([
        start,
        title,
        "",
        provenance_line(),
        "",
        f"`bench/voice_latency.py`, run {report['started']} on {report['machine']} (1-minute load average at start: "
        f"{report['load_start']}, at end: {report['load_end']}; the machine is shared with other sessions' runs; "
        f"niceness {report['nice']}). CPU probe (a fixed single-core loop, ms; lowest = idle core): "
        f"min {cpu['min_ms']}, median {cpu['median_ms']}, max {cpu['max_ms']}.",
        f"Raw numbers: `bench/results/{results.name}`. {report['calls']} call(s) x {report['turns']} spoken "
        f"questions, carrier {report['carrier']} ({report['format']}), Whisper tiny.en + SmolLM2-135M (max 40 tokens) "
        "+ Piper, all on this machine.",
        "",
        f"**Goal: p50 ≤ {GOAL_P50_MS} ms, p95 ≤ {GOAL_P95_MS} ms. Measured voice-to-voice p50 {v2v['p50']} ms, "
        f"p95 {v2v['p95']} ms: {'met' if met else 'not met'}.** Greeting (socket open to first agent audio): "
        f"p50 {report['greeting_p50_ms']} ms.",
        "",
        "| stage | n | p50 ms | p95 ms | mean ms | measured from |",
        "|---|---|---|---|---|---|",
        rows,
        "",
        *voices_markdown(report),
        *ab_markdown(report),
        "Where the time goes: " + report["analysis"],
        end,
    ]) + "\n"


def ab_markdown(report: dict[str, Any]) -> list[str]:
    rows = report.get("ab")
    if not rows:
        return []
    extra = "".join(f", {k}={v}" for k, v in (report.get("levers_env") or {}).items())
    if report.get("knowledge"):
        return ["With / without a knowledge base, same voice server, calls interleaved: **levers** = the agent with "
                "the test clinic's documents (retrieval before every answer, top 3) against **baseline** = the same "
                "agent without. Ratio = with / without p50.", "",
                "| stage | without p50 | with p50 | ratio | without p95 | with p95 |", "|---|---|---|---|---|---|",
                *(" | ".join(["", r["stage"], *(str(r[k]) if r[k] is not None else "-" for k in
                                                ("baseline_p50", "levers_p50", "ratio", "baseline_p95",
                                                 "levers_p95"))]).strip() + " |" for r in rows), ""]
    desc = LEVERS if report.get("baseline_env") == BASELINE_ENV else "the defaults"
    lines = [f"A/B on the same stack, calls interleaved: **levers** ({desc}{extra}; measured above) "
             f"against **baseline** (voice server with {', '.join(f'{k}={v}' for k, v in report['baseline_env'].items())}). "
             "Ratio = levers / baseline p50 (below 1: faster); compare ratios, as the load moves during a run.",
             "",
             "| stage | baseline p50 | levers p50 | ratio | baseline p95 | levers p95 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(" | ".join(["", r["stage"], *(str(r[k]) if r[k] is not None else "-" for k in
                                                    ("baseline_p50", "levers_p50", "ratio", "baseline_p95",
                                                     "levers_p95"))]).strip() + " |")
    guesses = report.get("speculative_replies") or {}
    if guesses:
        lines += ["", "Replies started before the turn end (the voice servers' `voice_speculative_replies_total`): "
                  + "; ".join(f"{name}: {g['confirmed']} confirmed, {g['withdrawn']} withdrawn"
                              for name, g in guesses.items()) + "."]
    return [*lines, ""]


STAGE_NOTES = {
    "vad_stop": "end of caller speech (VAD needs VAD_STOP_SECS of silence, 200 ms)",
    "smart_turn": "its own inference time (incl. waiting for a core)",
    "stt_final": "end of caller speech",
    "turn_end": "end of caller speech (VAD stop + smart-turn + final transcript)",
    "llm_first_token": "turn end",
    "tts_first_audio": "LLM first token (includes waiting for the first clause)",
    "send": "TTS first audio (queues, pacing)",
    "resampler_hold": "audio held by stream resamplers (TTS already at 8 kHz: none)",
    "voice_to_voice": "end of caller speech to first agent byte at the caller",
}


def analysis(stages: dict[str, dict[str, float | None]], cpu: dict[str, float],
             asr: dict[str, float] | None = None) -> str:
    def p50(name: str) -> float:
        value = stages[name]["p50"]
        return float(value) if value is not None else 0.0

    stretch = cpu["median_ms"] / cpu["min_ms"] if cpu.get("min_ms") else 1.0
    smart_path = p50("vad_stop") + p50("smart_turn")
    last = "the ASR's final transcript" if p50("stt_final") >= smart_path else "smart-turn's decision"
    asr_text = ""
    if asr and asr.get("final_latency_mean_ms"):
        asr_text = (
            f" The ASR server's own metrics put its final {asr['final_latency_mean_ms']:.0f} ms after the end of "
            f"speech as its VAD hears it, the speculative decode taking {asr.get('decode_speculative_mean_ms', 0):.0f}"
            " ms (means over both servers' calls); the rest of the final's time is that VAD's hangover on the last "
            "word's tail and the trip through the pipeline.")
    return (
        f"the user turn is closed {p50('turn_end'):.0f} ms after the caller stops, by the later of its two signals, "
        f"here {last}: the final transcript at {p50('stt_final'):.0f} ms (the ASR decodes speculatively from the "
        "first ~100 ms pause and sends the final once its endpoint silence has passed and the decode is done), "
        f"VAD stop + smart-turn at {smart_path:.0f} ms ({p50('vad_stop'):.0f} + {p50('smart_turn'):.0f})."
        f"{asr_text} Then the LLM's first token ({p50('llm_first_token'):.0f} ms, prompt prefix cached) and the first "
        f"synthesized audio ({p50('tts_first_audio'):.0f} ms: SmolLM2 writes the first clause, then Piper speaks "
        f"it). Sending ({p50('send'):.0f} ms) and resampling ({p50('resampler_hold'):.0f} ms; TTS produces 8 kHz "
        "directly) add nothing measurable. During the run the CPU probe took a median "
        f"{cpu['median_ms']} ms against {cpu['min_ms']} ms at best, so our processes ran about {stretch:.1f}x slower "
        "than on idle cores: every CPU-bound stage above (ASR decode, smart-turn, LLM, TTS) is stretched by "
        f"about that much. Divided by that factor, voice-to-voice would be about "
        f"{p50('voice_to_voice') / stretch:.0f} ms on dedicated cores (ASR final {p50('stt_final') / stretch:.0f}, "
        f"LLM {p50('llm_first_token') / stretch:.0f}, first audio {p50('tts_first_audio') / stretch:.0f}): an "
        "estimate, not a measurement. With SPECULATIVE_LLM (the default) the reply starts on the ASR's pause "
        "transcript (as it arrives with SPECULATE_AT_PAUSE, else at the VAD stop) and is released at the turn end, "
        "so the LLM's first token above is what was left of it after the turn end, not its whole time."
    )


def write_outputs(report: dict[str, Any], results_path: Path | None = None) -> None:
    """The results file and its BENCHMARKS.md section; with `results_path`, only that file (a one-off A/B whose
    figures go in a section of their own)."""
    results, start, end, _ = variant(report)
    target = results_path or results
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=str))
    if results_path is None:
        replace_section(start, end, markdown(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=5, help="spoken questions per call")
    parser.add_argument("--calls", type=int, default=2, help="calls one after the other (per configuration)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the interleaved baseline (levers off) voice server")
    parser.add_argument("--levers-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra voice server setting for the measured (levers) server, e.g. SPECULATIVE_LLM=true")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="KEY=VALUE",
                        help=f"the baseline server's settings instead of {BASELINE_ENV}")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--carrier", choices=["twilio", "vobiz"], default="twilio")
    parser.add_argument("--format", choices=["mulaw_8k", "l16_8k", "l16_16k"], default=None)
    parser.add_argument("--nice", type=int, default=0, help="change this process's (and servers') niceness")
    parser.add_argument("--knowledge", action="store_true",
                        help="A/B the agent with a knowledge base (tests/knowledge_data) against the same agent "
                             "without, on one voice server (implies --no-baseline)")
    parser.add_argument("--caller-voice", action="append", default=[], metavar="VOICE",
                        help="the caller's voice, call by call in turn: piper (the agent's own synthesiser, the "
                             "default) or an espeak-ng voice as NAME:WPM, e.g. en-gb-scotland:160")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--results", type=Path, default=None, metavar="PATH",
                        help="write the raw numbers here and leave BENCHMARKS.md alone (a one-off A/B)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the BENCHMARKS.md section from bench/results/voice_latency.json; run nothing")
    args = parser.parse_args()
    args.caller_voice = args.caller_voice or [PIPER]
    if args.render_only:
        report = json.loads(variant({"knowledge": args.knowledge, "caller_voices": args.caller_voice})[0].read_text())
        report["analysis"] = analysis(report["stages"], report["cpu_probe"], report.get("asr_server"))
        write_outputs(report)
        return
    if args.nice:
        os.nice(args.nice)
    levers_env = dict(item.split("=", 1) for item in args.levers_env)
    baseline_env = dict(item.split("=", 1) for item in args.baseline_env) if args.baseline_env else BASELINE_ENV
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    probe = CpuProbe()
    with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
        stack = start_stack(Path(tmp), baseline_env=None if args.no_baseline or args.knowledge else baseline_env,
                            levers_env=levers_env)
        try:
            probe.start()
            out = asyncio.run(run_bench(args, stack))
        finally:
            cpu = probe.stop()
            stack.stop()
    result = out["result"]
    stages = result.stage_stats()
    print("\nvoice-to-voice and per-stage latency (ms):")
    print(result.table())
    if out["baseline"] is not None:
        print(f"\nbaseline (levers off: {baseline_env}):")
        print(out["baseline"].table())
    print(f"\nASR server (its own metrics, all calls): {out['asr_server']}")
    print(f"Replies started before the turn end (confirmed / withdrawn): {out['speculative_replies']}")
    print(f"pauses inside replies: levers {reply_pauses(result.reports)}"
          + (f", baseline {reply_pauses(out['baseline'].reports)}" if out["baseline"] is not None else ""))
    g = sorted(result.greeting_ms)
    report = {
        "started": started, "machine": machine(), "load_start": round(load_start, 2),
        "load_end": round(os.getloadavg()[0], 2), "nice": os.nice(0), "cpu_probe": cpu,
        "calls": args.calls, "concurrency": args.concurrency, "turns": args.turns, "carrier": args.carrier,
        "format": args.format or ("mulaw_8k" if args.carrier == "twilio" else "default"),
        "stages": stages, "greeting_p50_ms": percentile(g, 50), "greeting_ms": g, "errors": result.errors,
        "samples": [{"call": s.call, "turn": s.turn, "caller_voice": v, **s.stages}
                    for s, v in zip(result.samples, out["voice_of"]["levers"], strict=True)],
        "goal": {"p50_ms": GOAL_P50_MS, "p95_ms": GOAL_P95_MS}, "levers_env": levers_env,
        "baseline_env": baseline_env if out["baseline"] is not None and not args.knowledge else None,
        "knowledge": args.knowledge, "asr_server": out["asr_server"], "caller_voices": args.caller_voice,
        "speculative_replies": out["speculative_replies"],
        "by_voice": by_voice(result.samples, out["voice_of"]["levers"]), "reply_pauses": reply_pauses(result.reports),
    }
    if out["baseline"] is not None:
        report["ab"] = ab_rows(stages, out["baseline"].stage_stats())
        report["baseline_samples"] = [{"call": s.call, "turn": s.turn, "caller_voice": v, **s.stages}
                                      for s, v in zip(out["baseline"].samples, out["voice_of"]["baseline"],
                                                      strict=True)]
        report["baseline_by_voice"] = by_voice(out["baseline"].samples, out["voice_of"]["baseline"])
        report["baseline_reply_pauses"] = reply_pauses(out["baseline"].reports)
    report["analysis"] = analysis(stages, cpu, out["asr_server"])
    if not args.no_write:
        write_outputs(report, args.results)
        print(f"\nwrote {args.results or variant(report)[0].relative_to(ROOT)}"
              + ("" if args.results else f" and its section of {BENCHMARKS_MD.name}"))


if __name__ == "__main__":
    main()
