"""Observers of a call pipeline: recording, per-turn latency and usage. They watch frames; they never change them.

Observers run behind the pipeline (queued), so every time here comes from the frame itself or from the push
timestamp, never from "now".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import (
    LLMTextFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import (
    LLMUsageMetricsData,
    STTUsageMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
    TurnMetricsData,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from core.call_events import TurnLatency, UsageUnits


class CallClock(SystemClock):
    """The pipeline clock, with its start on the monotonic clock, so push timestamps map to the call timeline."""

    def __init__(self) -> None:
        super().__init__()
        self.started_ns = 0

    def start(self) -> None:
        super().start()
        self.started_ns = time.monotonic_ns()

    def monotonic_s(self, timestamp_ns: int) -> float:
        return (self.started_ns + timestamp_ns) / 1e9


class CallAudioSink(Protocol):
    """The call's stereo recording: caller audio as it arrived, agent audio where the carrier played it, and the
    cut a barge-in's clear makes. The media transport feeds it directly (voice_server/media)."""

    def add_caller(self, pcm: bytes, sample_rate: int, at_s: float | None = None) -> None: ...

    def add_agent(self, pcm: bytes, sample_rate: int, start_s: float) -> None: ...

    def drop_agent_after(self, t_s: float) -> None: ...


@dataclass
class TurnTiming:
    """Monotonic seconds of one caller turn and the agent's answer to it."""

    speech_start_s: float | None = None
    vad_stop_s: float | None = None
    stop_secs: float = 0.0
    smart_turn_ms: float | None = None
    stt_final_s: float | None = None
    turn_end_s: float | None = None
    llm_ttfb_s: float | None = None
    llm_first_token_s: float | None = None
    tts_ttfb_s: float | None = None
    tts_first_audio_s: float | None = None
    first_audio_sent_s: float | None = None

    @property
    def end_of_speech_s(self) -> float | None:
        if self.vad_stop_s is None:
            return None
        return self.vad_stop_s - self.stop_secs

    def latency(self) -> TurnLatency:
        eos = self.end_of_speech_s

        def ms(a: float | None, b: float | None) -> float | None:
            return round((a - b) * 1000, 1) if a is not None and b is not None else None

        return TurnLatency(
            vad_stop_ms=ms(self.vad_stop_s, eos),
            smart_turn_ms=round(self.smart_turn_ms, 1) if self.smart_turn_ms is not None else None,
            stt_final_ms=ms(self.stt_final_s, eos),
            turn_end_ms=ms(self.turn_end_s, eos),
            llm_first_token_ms=(round(self.llm_ttfb_s * 1000, 1) if self.llm_ttfb_s is not None
                                else ms(self.llm_first_token_s, self.turn_end_s)),
            tts_first_audio_ms=(round(self.tts_ttfb_s * 1000, 1) if self.tts_ttfb_s is not None
                                else ms(self.tts_first_audio_s, self.llm_first_token_s)),
            voice_to_voice_ms=ms(self.first_audio_sent_s, eos),
        )

    def stages(self) -> dict[str, float | None]:
        """Absolute monotonic stage times, for the simulator's breakdown."""
        return {
            "end_of_speech": self.end_of_speech_s, "vad_stop": self.vad_stop_s, "stt_final": self.stt_final_s,
            "turn_end": self.turn_end_s, "llm_first_token": self.llm_first_token_s,
            "tts_first_audio": self.tts_first_audio_s, "first_audio_sent": self.first_audio_sent_s,
        }


class LatencyObserver(BaseObserver):
    """Per-turn stage timings: VAD stop, smart-turn, STT final, LLM first token, TTS first audio, first audio
    byte on the socket. A turn is complete when the first answer audio is sent after the caller's turn ended."""

    def __init__(self, clock: CallClock, *, stt: FrameProcessor | None, llm: FrameProcessor | None,
                 tts: FrameProcessor | None, transport_out: FrameProcessor | None,
                 on_turn_complete: Callable[[TurnTiming], None] | None = None) -> None:
        super().__init__(observe_every_push=False)
        self.clock = clock
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self.transport_out = transport_out
        self.on_turn_complete = on_turn_complete or (lambda timing: None)
        # Further consumers of each finished turn's latency (the voice server's Prometheus histograms); they get
        # exactly the numbers the call's TurnRecorded carries.
        self.turn_listeners: list[Callable[[TurnLatency], None]] = []
        self.usage = UsageUnits()
        self.completed: list[TurnTiming] = []
        self._current = TurnTiming()
        self._answering: TurnTiming | None = None
        # Fallback usage count, for OpenAI-compatible servers that send no usage in streams (llama.cpp).
        self._llm_usage_reported = False
        self._streamed_tokens = 0

    def final_usage(self) -> UsageUnits:
        """Usage for CallEnded; LLM tokens estimated when the LLM server reported none (llama.cpp streams carry no
        usage): 1 streamed chunk = 1 token, and the prompt as the LLM chain counted every request it sent (system
        prompt, messages and tool schemas, 4 characters a token; pipelines/llm_chain.py)."""
        usage = self.usage.model_copy()
        if not self._llm_usage_reported:
            usage.llm_completion_tokens = self._streamed_tokens
            usage.llm_prompt_tokens = int(getattr(self.llm, "prompt_tokens_sent", 0))
        return usage

    def current_or_last(self) -> TurnTiming | None:
        """The caller turn that is ending (the observer may lag the aggregator's events a little)."""
        if self._answering is not None:
            return self._answering
        if self._current.speech_start_s is not None:
            return self._current
        return self.completed[-1] if self.completed else None

    def _t(self, data: FramePushed) -> float:
        return self.clock.monotonic_s(data.timestamp)

    async def on_push_frame(self, data: FramePushed) -> None:
        frame, src = data.frame, data.source
        if isinstance(frame, MetricsFrame):
            if data.first_push:
                self._metrics(frame, src)
            return
        # Broadcast frames come as two instances (downstream and upstream): count each event once.
        if not data.first_push or data.direction != FrameDirection.DOWNSTREAM:
            return
        t = self._t(data)
        if src is self.llm and isinstance(frame, LLMTextFrame):
            self._streamed_tokens += 1
        if isinstance(frame, (VADUserStartedSpeakingFrame, UserStartedSpeakingFrame)):
            if self._current.speech_start_s is None:
                start_secs = getattr(frame, "start_secs", 0.0) or 0.0
                self._current.speech_start_s = t - start_secs
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._current.vad_stop_s = t
            self._current.stop_secs = frame.stop_secs
        elif isinstance(frame, TranscriptionFrame) and src is self.stt:
            self._current.stt_final_s = t
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._current.turn_end_s = t
            if self._current.vad_stop_s is None:
                self._current.vad_stop_s = t
            self._answering, self._current = self._current, TurnTiming()
        elif self._answering is not None:
            a = self._answering
            if isinstance(frame, LLMTextFrame) and src is self.llm and a.llm_first_token_s is None:
                a.llm_first_token_s = t
            elif isinstance(frame, TTSAudioRawFrame) and src is self.tts and a.tts_first_audio_s is None:
                a.tts_first_audio_s = t
            elif isinstance(frame, OutputAudioRawFrame) and src is self.transport_out:
                sent = frame.metadata.get("sent_mono")
                a.first_audio_sent_s = float(sent) if sent is not None else t
                self.completed.append(a)
                self._answering = None
                self.on_turn_complete(a)
                if self.turn_listeners:
                    latency = a.latency()
                    for listener in self.turn_listeners:
                        listener(latency)

    def _metrics(self, frame: MetricsFrame, src: FrameProcessor) -> None:
        for d in frame.data:
            if isinstance(d, TurnMetricsData):
                self._current.smart_turn_ms = d.e2e_processing_time_ms
            elif isinstance(d, TTFBMetricsData) and self._answering is not None:
                if src is self.llm and self._answering.llm_ttfb_s is None:
                    self._answering.llm_ttfb_s = d.value
                elif src is self.tts and self._answering.tts_ttfb_s is None:
                    self._answering.tts_ttfb_s = d.value
            elif isinstance(d, LLMUsageMetricsData):
                self._llm_usage_reported = True
                self.usage.llm_prompt_tokens += d.value.prompt_tokens
                self.usage.llm_completion_tokens += d.value.completion_tokens
            elif isinstance(d, TTSUsageMetricsData):
                self.usage.tts_characters += d.value
            elif isinstance(d, STTUsageMetricsData):
                self.usage.stt_audio_s += d.value.audio_seconds
