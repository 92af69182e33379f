"""Runs simulated calls (the telephony simulator, a test double) and turns them into latency statistics with a
per-stage breakdown. Used by `voicectl simulate` and bench/voice_latency.py.

Stage times come from the voice server's /internal/v1/calls/{id}/latency (monotonic clock; simulator and server
share the host, so the clocks agree). Every stage is measured from the caller's true end of speech in the audio the
simulator sent, or from the stage before it:
  vad_stop        VAD reports silence (includes its stop_secs window)           - from end of speech
  smart_turn      smart-turn v3.2 inference (wall time, incl. queueing)          - its own duration
  stt_final       the final transcript arrives                                   - from end of speech
  turn_end        the user turn is closed (VAD + smart-turn + final transcript)  - from end of speech
  llm_first_token first token after the turn closed                              - from turn_end
  tts_first_audio first synthesized audio (incl. waiting for a first sentence)   - from llm_first_token
  send            first audio byte written to the socket (queues, pacing)        - from tts_first_audio
  resampler_hold  audio held back by stream resamplers on the output path        - measured per rate pair
  voice_to_voice  first agent audio byte at the caller                           - from end of speech
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np

from core.service_auth import mint_service_token, service_headers
from voice_server.testing.simulator import CallerTurn, CallReport, CallScript, CarrierAccount, SimulatedCall

STAGES = ("vad_stop", "smart_turn", "stt_final", "turn_end", "llm_first_token", "tts_first_audio", "send",
          "resampler_hold", "voice_to_voice")

DEFAULT_QUESTIONS = (
    "What are your opening hours on Saturday?",
    "Can I book an appointment for next Tuesday?",
    "How much does a standard consultation cost?",
    "Where is your office located?",
    "Do you accept credit cards?",
    "Can I speak to someone about my invoice?",
    "Is there parking near the building?",
    "How long does a typical appointment take?",
    "Can I change my booking online?",
    "What documents should I bring with me?",
)


async def measure_resampler_hold_ms(in_rate: int, out_rate: int) -> float:
    """How much audio Pipecat's stream resampler keeps back (the latency it adds) for this rate pair; 0 when the
    rates match, since Pipecat then passes audio through."""
    from pipecat.audio.utils import create_stream_resampler

    resampler = create_stream_resampler()
    chunk = np.zeros(int(in_rate * 0.02), dtype=np.int16).tobytes()
    sent = got = 0
    for _ in range(50):
        out = await resampler.resample(chunk, in_rate, out_rate)
        sent += len(chunk) // 2
        got += len(out) // 2
    return round((sent / in_rate - got / out_rate) * 1000, 1)


@dataclass
class TurnSample:
    call: int
    turn: int
    voice_to_voice_ms: float | None
    stages: dict[str, float | None] = field(default_factory=dict)


@dataclass
class SimulationResult:
    reports: list[CallReport]
    samples: list[TurnSample]
    greeting_ms: list[float]
    errors: list[str] = field(default_factory=list)

    def stage_stats(self) -> dict[str, dict[str, float | None]]:
        stats: dict[str, dict[str, float | None]] = {}
        for stage in STAGES:
            values = sorted(v for s in self.samples if (v := s.stages.get(stage)) is not None)
            stats[stage] = {"n": float(len(values)), "p50": percentile(values, 50), "p95": percentile(values, 95),
                            "mean": round(statistics.fmean(values), 1) if values else None}
        return stats

    def table(self) -> str:
        lines = [f"{'stage':<18}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}"]
        for stage, st in self.stage_stats().items():
            def fmt(v: float | None) -> str:
                return f"{v:.0f}" if v is not None else "-"

            lines.append(f"{stage:<18}{int(st['n'] or 0):>5}{fmt(st['p50']):>10}{fmt(st['p95']):>10}"
                         f"{fmt(st['mean']):>10}")
        if self.greeting_ms:
            g = sorted(self.greeting_ms)
            lines.append(f"{'greeting':<18}{len(g):>5}{percentile(g, 50) or 0:>10.0f}{percentile(g, 95) or 0:>10.0f}"
                         f"{statistics.fmean(g):>10.0f}")
        return "\n".join(lines)


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


async def synthesize_questions(http: httpx.AsyncClient, tts_url: str, texts: list[str], service_secret: str,
                               sample_rate: int = 8000) -> list[bytes]:
    """Caller speech, synthesised by the project's TTS server (Piper), which needs a service token."""
    out = []
    for text in texts:
        resp = await http.post(f"{tts_url.rstrip('/')}/v1/audio/speech", headers=service_headers(service_secret, "simulator"),
                               json={"input": text, "response_format": "pcm", "sample_rate": sample_rate}, timeout=60)
        resp.raise_for_status()
        out.append(resp.content)
    return out


async def fetch_latency(http: httpx.AsyncClient, voice_url: str, secret: str, carrier_call_id: str
                        ) -> dict[str, Any] | None:
    headers = {"Authorization": f"Bearer {mint_service_token(secret, 'simulator')}"}
    for _ in range(20):  # the server files the record when the call has finished
        resp = await http.get(f"{voice_url}/internal/v1/calls/{carrier_call_id}/latency", headers=headers)
        if resp.status_code == 200 and not resp.json().get("live"):
            return dict(resp.json())
        await asyncio.sleep(0.25)
    return None


def samples_for_call(index: int, report: CallReport, latency: dict[str, Any] | None,
                     resampler_hold_ms: float) -> list[TurnSample]:
    server_turns = (latency or {}).get("turns", [])
    samples = []
    for answer in report.answers:
        eos = answer.end_of_speech
        stages: dict[str, float | None] = dict.fromkeys(STAGES)
        stages["voice_to_voice"] = answer.voice_to_voice_ms
        stages["resampler_hold"] = resampler_hold_ms
        best, best_gap = None, 1.5
        for turn in server_turns:
            server_eos = turn["stages"].get("end_of_speech")
            if server_eos is not None and -0.5 <= server_eos - eos and abs(server_eos - eos) < best_gap:
                best, best_gap = turn, abs(server_eos - eos)
        if best is not None:
            st = best["stages"]

            def delta(a: float | None, b: float | None) -> float | None:
                return round((a - b) * 1000, 1) if a is not None and b is not None else None

            stages["vad_stop"] = delta(st.get("vad_stop"), eos)
            stages["smart_turn"] = best.get("smart_turn_ms")
            stages["stt_final"] = delta(st.get("stt_final"), eos)
            stages["turn_end"] = delta(st.get("turn_end"), eos)
            stages["llm_first_token"] = delta(st.get("llm_first_token"), st.get("turn_end"))
            stages["tts_first_audio"] = delta(st.get("tts_first_audio"), st.get("llm_first_token"))
            stages["send"] = delta(st.get("first_audio_sent"), st.get("tts_first_audio"))
        samples.append(TurnSample(call=index, turn=answer.turn, voice_to_voice_ms=answer.voice_to_voice_ms,
                                  stages=stages))
    return samples


@dataclass
class SimulationConfig:
    voice_url: str
    carrier: Literal["twilio", "vobiz"]
    to_number: str
    account: CarrierAccount
    questions: list[bytes]
    question_rate: int = 8000
    concurrency: int = 1
    turns: int = 3
    vobiz_format: str | None = None
    barge_in_after_s: float | None = None
    dtmf: str = ""
    from_number: str = "+14155550100"
    service_token_secret: str | None = None
    gap_s: float = 0.6
    max_duration_s: float = 180.0
    stagger_s: float = 0.5


async def run_simulation(cfg: SimulationConfig, fake_carrier: Any | None = None) -> SimulationResult:
    """Runs `concurrency` calls at once, each asking `turns` questions; returns reports and latency samples."""
    if cfg.carrier == "twilio":
        answer_url = f"{cfg.voice_url}/twilio/voice"
        status_url = f"{cfg.voice_url}/twilio/status"
    else:
        answer_url = f"{cfg.voice_url}/vobiz/answer" + (f"?format={cfg.vobiz_format}" if cfg.vobiz_format else "")
        status_url = f"{cfg.voice_url}/vobiz/hangup"
    # TTS audio is requested at the carrier's output rate, so the output path has no resampling to hold audio.
    out_rate = 16000 if cfg.vobiz_format == "l16_16k" else 8000
    hold = await measure_resampler_hold_ms(out_rate, out_rate)
    async with httpx.AsyncClient(timeout=30.0) as http:

        async def one(index: int) -> tuple[CallReport, list[TurnSample]]:
            await asyncio.sleep(index * cfg.stagger_s)
            turns = []
            for k in range(cfg.turns):
                turns.append(CallerTurn(audio=cfg.questions[(index + k) % len(cfg.questions)],
                                        sample_rate=cfg.question_rate, gap_s=cfg.gap_s, label=f"q{k}"))
            if cfg.barge_in_after_s is not None and turns:
                turns.append(CallerTurn(audio=cfg.questions[-1], sample_rate=cfg.question_rate,
                                        barge_in_after_s=cfg.barge_in_after_s, label="barge-in"))
            if cfg.dtmf:
                turns.append(CallerTurn(dtmf=cfg.dtmf, label="dtmf"))
            sim = SimulatedCall(carrier=cfg.carrier, answer_url=answer_url, account=cfg.account,
                                from_number=cfg.from_number, to_number=cfg.to_number, http=http,
                                script=CallScript(turns=turns, hangup_after_s=0.5, max_duration_s=cfg.max_duration_s),
                                status_callback_url=status_url)
            if fake_carrier is not None:
                fake_carrier.register_inbound(sim)
            report = await sim.run()
            latency = None
            if cfg.service_token_secret:
                latency = await fetch_latency(http, cfg.voice_url, cfg.service_token_secret, report.carrier_call_id)
            return report, samples_for_call(index, report, latency, hold)

        results = await asyncio.gather(*(one(i) for i in range(cfg.concurrency)), return_exceptions=True)
    reports: list[CallReport] = []
    samples: list[TurnSample] = []
    errors: list[str] = []
    for res in results:
        if isinstance(res, BaseException):
            errors.append(f"{type(res).__name__}: {res}")
            continue
        report, call_samples = res
        reports.append(report)
        samples.extend(call_samples)
    greeting = [r.greeting_latency_ms for r in reports if r.greeting_latency_ms is not None]
    return SimulationResult(reports=reports, samples=samples, greeting_ms=greeting, errors=errors)
