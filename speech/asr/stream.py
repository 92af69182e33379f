"""One recognition stream: audio in, Riva-style interim and final results out.

Audio is endpointed at its own rate (8 or 16 kHz); only an utterance's audio is resampled to Whisper's 16 kHz, in
the decode thread. At a short pause the utterance is decoded speculatively, so the final is usually ready the
moment the silence is long enough to end the utterance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass

import numpy as np
import soxr

from core.g711 import mulaw_to_pcm16
from speech.asr import metrics
from speech.asr.endpointer import (
    Endpointer,
    EndpointerParams,
    Pause,
    SpeechResumed,
    SpeechStarted,
    UtteranceEnded,
)
from speech.asr.engine import DecodeOptions, Transcript, WhisperEngine, WorkerPool, WorkerPoolBusy
from speech.asr.vad import SileroModel

log = logging.getLogger("speech.asr.stream")

_PUNCTUATION = re.compile(r"[^\w\s']")


@dataclass(frozen=True)
class StreamConfig:
    """A validated RecognitionConfig."""

    encoding: str  # "pcm16" | "mulaw"
    sample_rate: int
    channels: int
    language: str
    interim_results: bool
    punctuation: bool
    word_offsets: bool
    hotwords: str | None
    stop_ms: int
    interim_interval_ms: int | None = None  # the stream's own cadence (custom_configuration); None: the server's
    # Send each pause's speculative decode as an interim (stability PAUSE_STABILITY) the moment it is done, whether
    # or not interims are on: it costs no decode, and a client can start on it before the utterance's final.
    pause_transcripts: bool = False


# The stability of a pause transcript: the text of all the utterance's audio up to a pause, already decoded for the
# final (which carries the same words when the caller does not go on). Timed interims carry 0.5.
PAUSE_STABILITY = 1.0


@dataclass(frozen=True)
class WordOffset:
    word: str
    start_ms: int
    end_ms: int
    confidence: float


@dataclass(frozen=True)
class StreamResult:
    transcript: str
    is_final: bool
    confidence: float
    stability: float
    audio_processed_s: float
    words: tuple[WordOffset, ...] = ()


@dataclass(frozen=True)
class StreamError:
    code: str  # grpc.StatusCode name
    message: str


def decode_audio_bytes(data: bytes, encoding: str, channels: int) -> np.ndarray:
    """Raw bytes -> mono float32 in [-1, 1]."""
    if encoding == "mulaw":
        samples = mulaw_to_pcm16(data)
    else:
        samples = np.frombuffer(data, dtype="<i2")
    audio = samples.astype(np.float32) / 32768.0
    if channels > 1:
        usable = audio.size - audio.size % channels
        audio = audio[:usable].reshape(-1, channels).mean(axis=1)
    return audio


def format_transcript(text: str, punctuation: bool) -> str:
    if punctuation:
        return text
    return " ".join(_PUNCTUATION.sub(" ", text).lower().split())


class RecognitionStream:
    def __init__(
        self,
        engine: WhisperEngine,
        pool: WorkerPool,
        vad: SileroModel,
        config: StreamConfig,
        params: EndpointerParams,
        interim_interval_ms: int,
        interim_max_decode_s: float = 0.3,
    ) -> None:
        self.engine = engine
        self.pool = pool
        self.config = config
        self.endpointer = Endpointer(vad, config.sample_rate, params)
        self.results: asyncio.Queue[StreamResult | StreamError | None] = asyncio.Queue()
        self._options = DecodeOptions(hotwords=config.hotwords, word_timestamps=config.word_offsets)
        self._interim_samples = (
            int(interim_interval_ms * config.sample_rate / 1000) if config.interim_results and interim_interval_ms else 0
        )
        self._interim_max_decode_s = interim_max_decode_s
        self._bytes_per_frame = (1 if config.encoding == "mulaw" else 2) * config.channels
        self._carry = b""
        self._samples_in = 0
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=2048)  # (samples received so far, wall time)
        self._utterance_id = 0
        self._speculative: asyncio.Task[Transcript | None] | None = None
        self._interim_task: asyncio.Task[None] | None = None
        self._last_interim_at = 0
        self._last_final: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed = False

    @property
    def audio_processed_s(self) -> float:
        return self._samples_in / self.config.sample_rate

    # --- input -------------------------------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        if self._failed:
            return
        now = time.perf_counter()
        data = self._carry + data
        usable = len(data) - len(data) % self._bytes_per_frame
        self._carry = data[usable:]
        if not usable:
            return
        audio = decode_audio_bytes(data[:usable], self.config.encoding, self.config.channels)
        self._samples_in += audio.size
        self._arrivals.append((self._samples_in, now))
        # Scoring is ~0.3 ms per 32 ms window: inline for live chunks, a thread for big uploads.
        if audio.size > self.config.sample_rate // 4:
            events = await asyncio.to_thread(self.endpointer.feed, audio)
        else:
            events = self.endpointer.feed(audio)
        for event in events:
            self._on_event(event)
        self._maybe_interim()

    async def finish(self) -> None:
        """The client closed its side: finalize an open utterance, wait for every result, then end the results."""
        if not self._failed:
            for event in self.endpointer.flush():
                self._on_event(event)
            pending = [t for t in (self._last_final, self._interim_task) if t is not None]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await self.results.put(None)

    async def close(self) -> None:
        """The call is going away (cancelled or failed): stop everything in flight."""
        for task in [*self._tasks, self._speculative, self._interim_task]:
            if task is not None and not task.done():
                task.cancel()

    # --- events ------------------------------------------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        if isinstance(event, SpeechStarted):
            self._utterance_id += 1
            self._last_interim_at = event.start_sample
        elif isinstance(event, Pause):
            self._speculative = self._spawn_decode(event.audio, "speculative")
            if self.config.pause_transcripts:
                self._track(self._pause_transcript(self._speculative, self._utterance_id))
        elif isinstance(event, SpeechResumed):
            spec, self._speculative = self._speculative, None
            if spec is not None and self._interim_samples:
                self._track(self._interim_from(spec, self._utterance_id))
            elif spec is not None:
                spec.cancel()
        elif isinstance(event, UtteranceEnded):
            spec, self._speculative = self._speculative, None
            if spec is not None and not event.covered_by_pause:
                spec.cancel()
                spec = None
            if spec is None:
                spec = self._spawn_decode(event.audio, "final")
            start_s = event.start_sample / self.config.sample_rate
            speech_end_at = self._arrival_time(event.speech_end_sample)
            previous = self._last_final
            self._last_final = self._track(self._emit_final(spec, previous, start_s, speech_end_at))

    def _maybe_interim(self) -> None:
        if not self._interim_samples or not self.endpointer.in_speech or self._speculative is not None:
            return
        if self._interim_task is not None and not self._interim_task.done():
            return
        seen = self.endpointer.samples_seen
        if seen - self._last_interim_at < self._interim_samples or not self.pool.idle:
            return
        if self.engine.recent_decode_s > self._interim_max_decode_s:
            return  # the machine is busy: an interim would cost more than it is worth
        self._last_interim_at = seen
        audio = self.endpointer.current_audio()
        if audio.size:
            self._interim_task = self._track(self._run_interim(audio, self._utterance_id))

    # --- decoding ----------------------------------------------------------------------------------------------

    def _decode_sync(self, audio: np.ndarray) -> Transcript:
        if self.config.sample_rate != 16000:
            audio = soxr.resample(audio, self.config.sample_rate, 16000, quality="HQ").astype(np.float32)
        return self.engine.decode(audio, self._options, self.config.language)

    def _spawn_decode(self, audio: np.ndarray, kind: str) -> asyncio.Task[Transcript | None]:
        async def run() -> Transcript | None:
            metrics.QUEUE_WAITING.inc()
            try:
                result = await self.pool.run(self._decode_sync, audio)
            finally:
                metrics.QUEUE_WAITING.dec()
            if result is not None:
                metrics.DECODE_SECONDS.labels(kind).observe(result.decode_s)
                metrics.RTF.labels(kind).observe(result.rtf)
                if result.retried_full_window:
                    metrics.FULL_WINDOW_RETRIES.inc()
            return result

        task = asyncio.create_task(run())
        # A speculative decode may be dropped unawaited (speech resumed); mark its outcome as seen either way.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _run_interim(self, audio: np.ndarray, utterance_id: int) -> None:
        result = await self.pool.run(self._decode_sync, audio, optional=True)
        if result is None:
            return
        metrics.DECODE_SECONDS.labels("interim").observe(result.decode_s)
        metrics.RTF.labels("interim").observe(result.rtf)
        await self._put_interim(result, utterance_id)

    async def _interim_from(self, spec: asyncio.Task[Transcript | None], utterance_id: int) -> None:
        with contextlib.suppress(asyncio.CancelledError, WorkerPoolBusy):
            result = await spec
            if result is not None:
                await self._put_interim(result, utterance_id)

    async def _pause_transcript(self, spec: asyncio.Task[Transcript | None], utterance_id: int) -> None:
        with contextlib.suppress(asyncio.CancelledError, WorkerPoolBusy):
            result = await spec
            # Only while the pause goes on: once the caller resumes the text is outdated, once the utterance has
            # ended its final (the same decode) is on its way.
            if result is not None and self._speculative is spec and utterance_id == self._utterance_id:
                text = format_transcript(result.text, self.config.punctuation)
                if text:
                    await self.results.put(StreamResult(text, False, result.confidence, PAUSE_STABILITY,
                                                        self.audio_processed_s))

    async def _put_interim(self, result: Transcript, utterance_id: int) -> None:
        # Only while that utterance is still being spoken; a late interim after its final would confuse clients.
        if utterance_id != self._utterance_id or not self.endpointer.in_speech:
            return
        text = format_transcript(result.text, self.config.punctuation)
        if text:
            await self.results.put(StreamResult(text, False, result.confidence, 0.5, self.audio_processed_s))

    async def _emit_final(
        self,
        decode: asyncio.Task[Transcript | None],
        previous: asyncio.Task[None] | None,
        start_s: float,
        speech_end_at: float | None,
    ) -> None:
        try:
            result = await decode
        except WorkerPoolBusy as exc:
            metrics.REJECTED.labels("queue_timeout").inc()
            self._failed = True
            await self.results.put(StreamError("RESOURCE_EXHAUSTED", f"{exc}; try again later"))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a decode failure ends this stream with INTERNAL, never the server
            log.exception("decode failed")
            self._failed = True
            await self.results.put(StreamError("INTERNAL", f"recognition failed: {exc}"))
            return
        if previous is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await previous  # finals go out in utterance order
        if result is None or self._failed:
            return
        text = format_transcript(result.text, self.config.punctuation)
        if not text:
            return
        words = tuple(
            WordOffset(
                format_transcript(w.word, self.config.punctuation),
                int(1000 * (start_s + w.start_s)),
                int(1000 * (start_s + w.end_s)),
                w.probability,
            )
            for w in result.words
        )
        await self.results.put(StreamResult(text, True, result.confidence, 1.0, self.audio_processed_s, words))
        metrics.UTTERANCES.inc()
        if speech_end_at is not None:
            metrics.FINAL_LATENCY.observe(time.perf_counter() - speech_end_at)

    # --- helpers -----------------------------------------------------------------------------------------------

    def _track(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _arrival_time(self, sample: int) -> float | None:
        for received, at in self._arrivals:
            if received >= sample:
                return at
        return self._arrivals[-1][1] if self._arrivals else None


def run_offline(
    engine: WhisperEngine, vad: SileroModel, config: StreamConfig, params: EndpointerParams, audio: np.ndarray
) -> list[tuple[float, float, np.ndarray]]:
    """Cut a whole recording into utterances: (start_s, end_s, audio) each. Runs in a worker thread."""
    endpointer = Endpointer(vad, config.sample_rate, params)
    cuts: list[tuple[float, float, np.ndarray]] = []
    events = endpointer.feed(audio) + endpointer.flush()
    for event in events:
        if isinstance(event, UtteranceEnded):
            start = event.start_sample / config.sample_rate
            cuts.append((start, start + event.audio.size / config.sample_rate, event.audio))
    return cuts

