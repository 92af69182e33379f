"""The voice server's Prometheus metrics: one registry per process (per VoiceApp), fed by the session, the
carrier transport, the pipeline observers and an event-loop lag probe; exposed at GET /metrics.

Everything here is called from the event loop on the hot path (per frame for the pacing series), so each hook is
a couple of dictionary lookups and no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable

from pipecat.frames.frames import ErrorFrame
from pipecat.pipeline.worker import PipelineWorker
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.call_events import TurnLatency

# Turn stages: tens of ms to seconds.
STAGE_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0)
# Frame pacing and loop lag: a 20 ms frame cadence, so sub-ms up to a few frames.
PACING_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.2, 0.5, 1.0)

LOOP_LAG_INTERVAL_S = 0.1


class VoiceMetrics:
    def __init__(self, active_calls: Callable[[], int] | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.active_calls = Gauge("voice_active_calls", "Calls with a live media session", registry=r)
        if active_calls is not None:
            # Read from the session registry at scrape time, so it can never drift from the truth.
            self.active_calls.set_function(lambda: float(active_calls()))
        self.calls = Counter("voice_calls", "Calls ended, by carrier and end reason", ["carrier", "outcome"],
                             registry=r)
        self.stt_after_vad_stop = Histogram(
            "voice_stt_final_after_vad_stop_seconds", "From VAD stop to the final transcript", registry=r,
            buckets=STAGE_BUCKETS)
        self.llm_first_token = Histogram(
            "voice_llm_first_token_seconds", "LLM time to first token", registry=r, buckets=STAGE_BUCKETS)
        self.tts_first_audio = Histogram(
            "voice_tts_first_audio_seconds", "TTS time to first audio", registry=r, buckets=STAGE_BUCKETS)
        self.voice_to_voice = Histogram(
            "voice_to_voice_seconds", "End of caller speech to the first answer audio sent", registry=r,
            buckets=STAGE_BUCKETS)
        self.turn_end = Histogram(
            "voice_turn_end_seconds", "End of caller speech to the end of the turn (smart-turn or its fallback)",
            registry=r, buckets=STAGE_BUCKETS)
        self.smart_turn = Histogram(
            "voice_smart_turn_seconds", "Smart-turn inference per turn decision", registry=r, buckets=STAGE_BUCKETS)
        self.frame_lateness = Histogram(
            "voice_output_frame_lateness_seconds",
            "How late each paced output audio frame went out against its scheduled send time (pacing jitter)",
            registry=r, buckets=PACING_BUCKETS)
        self.underruns = Counter(
            "voice_output_underruns", "Output audio frames sent after the carrier's buffer had run dry mid-speech",
            registry=r)
        self.underrun_gap = Counter(
            "voice_output_underrun_gap_seconds", "Silence the caller heard inside agent speech", registry=r)
        self.loop_lag = Histogram(
            "voice_event_loop_lag_seconds", "Event-loop lag: oversleep of a periodic sleep", registry=r,
            buckets=PACING_BUCKETS)
        self.gc_pause = Histogram(
            "voice_gc_pause_seconds", "Garbage-collector passes by generation (each one stops the event loop)",
            ["generation"], registry=r, buckets=PACING_BUCKETS)
        for generation in ("0", "1", "2"):
            self.gc_pause.labels(generation)  # exported from the start, at 0
        self.errors = Counter("voice_errors", "Errors by type", ["type"], registry=r)
        self.speculative_replies = Counter(
            "voice_speculative_replies", "Replies started before the turn end (SPECULATIVE_LLM), by outcome: "
            "confirmed (released at the turn end) or not (withdrawn: the LLM's work on it was wasted)", ["outcome"],
            registry=r)
        self.llm_prefills = Counter(
            "voice_llm_prefills", "Next-turn prompts the platform's LLM evaluated while the agent spoke "
            "(LLM_PREFILL_NEXT_TURN, pipelines/llm_chain.py)", registry=r)
        self.stall_samples = Counter(
            "voice_loop_stall_samples", "Stack samples of the event loop while it was stalled (LOOP_STALL_TRACE_MS, "
            "voice_server/stall_watch.py), by its innermost frames", ["stack"], registry=r)
        self._lag_task: asyncio.Task[None] | None = None
        self._gc_started: float | None = None

    # -- calls --------------------------------------------------------------------------------------------------
    def call_ended(self, carrier: str, outcome: str) -> None:
        self.calls.labels(carrier, outcome).inc()

    def speculations(self, started: int, confirmed: int) -> None:
        """A call's guesses at its turn ends (pipelines/turns.py SpeculativeTurnStopStrategy), counted at its end."""
        self.speculative_replies.labels("confirmed").inc(confirmed)
        self.speculative_replies.labels("withdrawn").inc(max(0, started - confirmed))

    def prefills(self, sent: int) -> None:
        """A call's next-turn prefills, counted at its end."""
        self.llm_prefills.inc(sent)

    def observe_turn(self, latency: TurnLatency) -> None:
        """The same numbers the call's TurnRecorded carries (TurnTiming.latency()), in seconds."""
        if latency.stt_final_ms is not None and latency.vad_stop_ms is not None:
            self.stt_after_vad_stop.observe(max(0.0, latency.stt_final_ms - latency.vad_stop_ms) / 1000)
        for value, histogram in ((latency.llm_first_token_ms, self.llm_first_token),
                                 (latency.tts_first_audio_ms, self.tts_first_audio),
                                 (latency.voice_to_voice_ms, self.voice_to_voice),
                                 (latency.turn_end_ms, self.turn_end),
                                 (latency.smart_turn_ms, self.smart_turn)):
            if value is not None:
                histogram.observe(max(0.0, value) / 1000)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def watch_pipeline_errors(self, worker: PipelineWorker) -> None:
        """Counts the call pipeline's ErrorFrames by the processor that raised them ("pipeline:<class>"). An event
        handler, not an observer: observers get every frame through their own queue, which costs per frame."""

        @worker.event_handler("on_pipeline_error")
        async def _on_error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
            source = type(frame.processor).__name__ if frame.processor is not None else "unknown"
            self.error(f"pipeline:{source}")

    # -- output pacing ------------------------------------------------------------------------------------------
    def frame_sent(self, lateness_s: float) -> None:
        self.frame_lateness.observe(max(0.0, lateness_s))

    def underrun(self, gap_s: float) -> None:
        self.underruns.inc()
        self.underrun_gap.inc(max(0.0, gap_s))

    # -- event-loop lag -----------------------------------------------------------------------------------------
    def start_loop_probe(self, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        """The lag probe, and a timer on every garbage-collector pass: a long pass shows as loop lag, and if it
        outlasts the playout lead, as an underrun."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        if self._lag_task is None:
            self._lag_task = asyncio.get_running_loop().create_task(self._probe_loop(interval_s),
                                                                     name="event-loop-lag")

    async def stop_loop_probe(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
            self._lag_task = None

    async def _probe_loop(self, interval_s: float) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(interval_s)
            self.loop_lag.observe(max(0.0, time.monotonic() - started - interval_s))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self.gc_pause.labels(str(info.get("generation", -1))).observe(time.perf_counter() - self._gc_started)
            self._gc_started = None
