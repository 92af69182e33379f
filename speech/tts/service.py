"""Streaming synthesis: text -> pieces -> engine (worker threads) -> resampled PCM16 chunks, with metrics.

Each piece takes a worker slot on its own, so concurrent requests interleave piece by piece, and first pieces go
ahead of later ones: a new request's first audio does not wait behind another request's long tail.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

from speech.common.audio import float_to_pcm16_bytes
from speech.tts import metrics
from speech.tts.config import TtsSettings
from speech.tts.engines import TtsEngine, VoiceError, VoiceInfo
from speech.tts.text import split_for_streaming

log = logging.getLogger("speech.tts.service")

OUTPUT_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


class RequestError(ValueError):
    """Becomes an HTTP 4xx with this status and message."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


class ServerBusy(RuntimeError):
    """No capacity within the queue timeout (HTTP 503)."""


@dataclass(frozen=True)
class SpeechJob:
    text: str
    voice: VoiceInfo
    engine: TtsEngine
    speed: float
    sample_rate: int
    language: str | None = None


@dataclass
class SpeechStats:
    """Filled in while a job streams; read by the route for logs."""

    started: float = field(default_factory=time.perf_counter)
    first_audio_s: float | None = None
    audio_s: float = 0.0
    synth_s: float = 0.0
    pieces: int = 0


class PriorityPool:
    """`workers` slots; waiters are served by (priority, arrival) and give up after `timeout_s`."""

    def __init__(self, workers: int, timeout_s: float) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self._free = workers
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def busy(self) -> int:
        return self.workers - self._free

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we gave up: pass it on
            else:
                future.cancel()
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1


class Synthesizer:
    def __init__(self, settings: TtsSettings, engines: dict[str, TtsEngine]) -> None:
        self.settings = settings
        self.engines = engines
        self.pool = PriorityPool(settings.tts_workers, settings.tts_queue_timeout_s)
        self._executor = ThreadPoolExecutor(max_workers=settings.tts_workers, thread_name_prefix="tts-synth")
        self.active = 0
        ids = [v.id for v in self.voices(None)]
        self.default_voice = settings.tts_default_voice if settings.tts_default_voice in ids else (ids[0] if ids else "")
        if settings.tts_default_voice and self.default_voice != settings.tts_default_voice:
            log.warning(
                "TTS_DEFAULT_VOICE is not served here; using another default",
                extra={"wanted": settings.tts_default_voice, "default": self.default_voice},
            )

    # --- voices --------------------------------------------------------------------------------------------------

    def voices(self, org: str | None) -> list[VoiceInfo]:
        """The voices `org` may use: every built-in voice and its own clones (another organisation's clones do not
        exist for it; a clone without an owner, from before clones had owners, is nobody's until the operator
        re-clones it)."""
        return [v for engine in self.engines.values() for v in engine.voices() if not v.cloned or
                (org is not None and v.owner == org)]

    def find_voice(self, voice_id: str | None, engine_name: str | None,
                   org: str | None) -> tuple[TtsEngine, VoiceInfo]:
        wanted = voice_id or self.default_voice
        for name, engine in self.engines.items():
            if engine_name and name != engine_name:
                continue
            for voice in engine.voices():
                if voice.id == wanted and (not voice.cloned or (org is not None and voice.owner == org)):
                    return engine, voice
        available = ", ".join(v.id for v in self.voices(org)[:20])
        scope = f" for engine {engine_name}" if engine_name else ""
        raise RequestError(400, f"unknown voice {wanted!r}{scope}; available: {available} (GET /v1/voices)", "voice")

    def cloning_engine(self, engine_name: str | None) -> TtsEngine:
        for name, engine in self.engines.items():
            if engine.supports_cloning and (engine_name in (None, name)):
                return engine
        raise RequestError(
            400,
            "voice cloning needs the xtts engine, which this server does not run "
            f"(TTS_ENGINES={','.join(self.engines)}); start it with TTS_ENGINES=piper,xtts on a GPU machine",
            "engine",
        )

    async def add_voice(self, engine: TtsEngine, voice_id: str, name: str, wav: Path, language: str,
                        owner: str) -> VoiceInfo:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, engine.add_voice, voice_id, name, wav, language, owner
            )
        except VoiceError as exc:
            raise RequestError(400, str(exc)) from exc

    def delete_voice(self, voice_id: str, org: str | None) -> None:
        for engine in self.engines.values():
            if any(v.id == voice_id for v in engine.voices() if not v.cloned or v.owner == org):
                try:
                    engine.delete_voice(voice_id)
                except VoiceError as exc:
                    raise RequestError(400, str(exc), "voice_id") from exc
                return
        raise RequestError(404, f"unknown voice {voice_id!r}", "voice_id")

    # --- synthesis -----------------------------------------------------------------------------------------------

    def check_capacity(self) -> None:
        if self.active >= self.settings.tts_max_streams:
            metrics.REJECTED.labels("max_streams").inc()
            raise ServerBusy(f"the server already streams {self.active} requests (TTS_MAX_STREAMS); try again later")

    async def stream(self, job: SpeechJob, stats: SpeechStats) -> AsyncGenerator[bytes, None]:
        """PCM16 little-endian mono at job.sample_rate, piece by piece, as soon as each is synthesized."""
        pieces = split_for_streaming(job.text, self.settings.tts_first_chunk_chars)
        if not pieces:
            raise RequestError(400, "input has no speakable text (only punctuation or whitespace)", "input")
        native = job.voice.native_sample_rate
        resampler = (
            soxr.ResampleStream(native, job.sample_rate, 1, dtype="float32", quality="HQ")
            if native != job.sample_rate
            else None
        )
        cancel = threading.Event()
        self.active += 1
        metrics.ACTIVE.inc()
        try:
            for index, piece in enumerate(pieces):
                async for audio in self._piece(job, piece, index, cancel, stats):
                    out = resampler.resample_chunk(audio) if resampler is not None else audio
                    if out.size:
                        if stats.first_audio_s is None:
                            stats.first_audio_s = time.perf_counter() - stats.started
                            metrics.TTFA.labels(job.engine.name).observe(stats.first_audio_s)
                        yield float_to_pcm16_bytes(out)
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                if tail.size:
                    yield float_to_pcm16_bytes(tail)
            if stats.audio_s > 0:
                metrics.RTF.labels(job.engine.name).observe(stats.synth_s / stats.audio_s)
                metrics.AUDIO_SECONDS.labels(job.engine.name).inc(stats.audio_s)
        finally:
            cancel.set()  # a client that went away stops the engine after its current chunk
            self.active -= 1
            metrics.ACTIVE.dec()

    async def _piece(
        self, job: SpeechJob, text: str, index: int, cancel: threading.Event, stats: SpeechStats
    ) -> AsyncIterator[np.ndarray]:
        """Synthesize one piece on a worker thread, handing its chunks over as they come."""
        try:
            await self.pool.acquire(priority=0 if index == 0 else 1)
        except TimeoutError:
            metrics.REJECTED.labels("queue_timeout").inc()
            raise ServerBusy(
                f"all {self.pool.workers} synthesis workers stayed busy for {self.pool.timeout_s:.0f}s"
            ) from None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[np.ndarray | BaseException | None] = asyncio.Queue()

        def produce() -> None:
            t0 = time.perf_counter()
            try:
                iterator: Iterator[np.ndarray] = job.engine.synthesize(
                    text, job.voice.id, job.speed, job.language, cancel
                )
                for chunk in iterator:
                    stats.synth_s += time.perf_counter() - t0
                    stats.audio_s += chunk.size / job.voice.native_sample_rate
                    loop.call_soon_threadsafe(queue.put_nowait, chunk.astype(np.float32, copy=False))
                    t0 = time.perf_counter()
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:  # handed to the event loop, which raises it in the request
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(self.pool.release)

        try:
            self._executor.submit(produce)
        except BaseException:
            self.pool.release()
            raise
        stats.pieces += 1
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                if isinstance(item, VoiceError):
                    raise RequestError(400, str(item), "voice") from item
                raise item
            yield item

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        for engine in self.engines.values():
            engine.close()
