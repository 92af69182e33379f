"""Whisper (CTranslate2 via faster-whisper) decoding, one model per process, and the bounded worker pool.

The decode path calls CTranslate2 directly rather than `WhisperModel.transcribe` so it can encode a window shorter
than Whisper's fixed 30 s: max(ASR_ENCODER_WINDOW_S, utterance + 2 s). The encoder's cost grows faster than linearly
with the window (30 s: ~290 ms, 20 s: ~135 ms, 12 s: ~70 ms on 2 cores), which is most of a decode. Outputs
that look degenerate (repeated phrases, too many tokens for the audio) are decoded again with the full window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

log = logging.getLogger("speech.asr.engine")

SAMPLE_RATE = 16000
_FRAMES_PER_SECOND = 100  # Whisper mel frames
_FULL_WINDOW_FRAMES = 3000
_MAX_TOKENS = 448
T = TypeVar("T")


@dataclass(frozen=True)
class DecodeOptions:
    hotwords: str | None = None
    word_timestamps: bool = False
    beam_size: int = 1


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float
    audio_s: float
    decode_s: float
    words: tuple[Word, ...] = ()
    retried_full_window: bool = False

    @property
    def rtf(self) -> float:
        return self.decode_s / self.audio_s if self.audio_s > 0 else 0.0


@dataclass
class WhisperEngine:
    """Loads the model once; `decode` is thread-safe (CTranslate2 runs `workers` decodes in parallel)."""

    model_dir: Path
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 2
    workers: int = 2
    encoder_window_s: float = 12.0
    _model: WhisperModel = field(init=False, repr=False)
    _tokenizer: Tokenizer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t0 = time.perf_counter()
        self._model = WhisperModel(
            str(self.model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            num_workers=self.workers,
            local_files_only=True,
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self.multilingual, task="transcribe", language="en")
        self._suppress = list(get_suppressed_tokens(self._tokenizer, (-1,)) or ())
        # Recent decode time (moving average): interim results are only "cheap" while decodes are fast.
        self.recent_decode_s = 0.0
        log.info("whisper model loaded", extra={"model_dir": str(self.model_dir), "load_s": round(time.perf_counter() - t0, 3)})

    @property
    def languages(self) -> list[str]:
        return list(self._model.supported_languages)

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        self.decode(rng.normal(0, 0.01, SAMPLE_RATE).astype(np.float32), DecodeOptions())

    def decode(self, audio: np.ndarray, options: DecodeOptions, language: str = "en") -> Transcript:
        """Transcribe one utterance (float32 mono 16 kHz)."""
        t0 = time.perf_counter()
        audio_s = audio.size / SAMPLE_RATE
        if audio.size < SAMPLE_RATE // 10:
            return Transcript("", 0.0, audio_s, time.perf_counter() - t0)
        if options.word_timestamps or audio_s > 29.0:
            return self._decode_with_transcribe(audio, options, language, t0)
        features = self._model.feature_extractor(audio)
        frames = int(features.shape[-1])
        window = min(
            _FULL_WINDOW_FRAMES,
            max(int(self.encoder_window_s * _FRAMES_PER_SECOND), math.ceil((frames + 200) / 100) * 100),
        )
        text, confidence, suspicious = self._generate(features, window, options, language, audio_s)
        retried = False
        if suspicious and window < _FULL_WINDOW_FRAMES:
            text, confidence, _ = self._generate(features, _FULL_WINDOW_FRAMES, options, language, audio_s)
            retried = True
        elapsed = time.perf_counter() - t0
        self.recent_decode_s = 0.7 * self.recent_decode_s + 0.3 * elapsed if self.recent_decode_s else elapsed
        return Transcript(text, confidence, audio_s, elapsed, retried_full_window=retried)

    def _prompt(self, tokenizer: Tokenizer, hotwords: str | None) -> list[int]:
        prompt: list[int] = []
        if hotwords:
            prompt.append(tokenizer.sot_prev)
            prompt.extend(tokenizer.encode(" " + hotwords.strip())[: _MAX_TOKENS // 2 - 1])
        prompt.extend(tokenizer.sot_sequence)
        prompt.append(tokenizer.no_timestamps)
        return prompt

    def _tokenizer_for(self, language: str) -> Tokenizer:
        if not self.multilingual or language == "en":
            return self._tokenizer
        return Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language=language)

    def _generate(
        self, features: np.ndarray, window: int, options: DecodeOptions, language: str, audio_s: float
    ) -> tuple[str, float, bool]:
        padded = np.zeros((1, features.shape[0], window), dtype=np.float32)
        n = min(window, features.shape[-1])
        padded[0, :, :n] = features[:, :n]
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(padded))
        tokenizer = self._tokenizer_for(language)
        prompt = self._prompt(tokenizer, options.hotwords)
        # Fast speech is ~4 tokens/s; a generous cap still stops runaway repetition early.
        max_new = int(10 + 8 * audio_s)
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=options.beam_size,
            max_length=min(_MAX_TOKENS, len(prompt) + max_new),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        seq_len = len(result.sequences_ids[0])
        avg_logprob = result.scores[0] * seq_len / (seq_len + 1) if result.scores else -10.0
        if result.no_speech_prob > 0.6 and avg_logprob < -1.0:
            return "", 0.0, False
        hit_cap = len(result.sequences_ids[0]) >= max_new - 1
        return text, float(math.exp(min(0.0, avg_logprob))), hit_cap or _looks_repetitive(text)

    def _decode_with_transcribe(self, audio: np.ndarray, options: DecodeOptions, language: str, t0: float) -> Transcript:
        segments, _info = self._model.transcribe(
            audio,
            language=language if self.multilingual else "en",
            beam_size=options.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=not options.word_timestamps,
            word_timestamps=options.word_timestamps,
            vad_filter=False,
            hotwords=options.hotwords or None,
        )
        texts: list[str] = []
        words: list[Word] = []
        logprobs: list[float] = []
        for seg in segments:
            texts.append(seg.text)
            logprobs.append(seg.avg_logprob)
            for w in seg.words or ():
                words.append(Word(w.word.strip(), w.start, w.end, w.probability))
        confidence = float(math.exp(min(0.0, sum(logprobs) / len(logprobs)))) if logprobs else 0.0
        return Transcript(
            "".join(texts).strip(), confidence, audio.size / SAMPLE_RATE, time.perf_counter() - t0, tuple(words)
        )


_SENTENCE_SPLIT = re.compile(r"(?<=[.?!,])\s+")


def _looks_repetitive(text: str) -> bool:
    """A phrase repeated back to back (the typical failure of a short encoder window) or highly compressible text."""
    if len(text) > 24 and len(text) / max(1, len(zlib.compress(text.encode()))) > 2.4:
        return True
    parts = [p.strip(" .?!,").lower() for p in _SENTENCE_SPLIT.split(text) if p.strip(" .?!,")]
    for a, b in zip(parts, parts[1:], strict=False):
        if a == b and len(a.split()) >= 1:
            return True
    words = text.lower().split()
    for size in (1, 2, 3):
        if len(words) >= size * 4:
            tail = words[-size * 4 :]
            if all(tail[i] == tail[i % size] for i in range(len(tail))):
                return True
    return False


class WorkerPoolBusy(Exception):
    """No worker became free within the queue timeout."""


class WorkerPool:
    """At most `workers` decodes at once; the rest wait up to `queue_timeout_s` in arrival order.

    A slot is released when the decode thread really finishes (not when the awaiting task is cancelled), so the
    bound holds even for abandoned speculative decodes.
    """

    def __init__(self, workers: int, queue_timeout_s: float) -> None:
        self.workers = workers
        self.queue_timeout_s = queue_timeout_s
        self._sem = asyncio.Semaphore(workers)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr-decode")
        self.waiting = 0
        self.running = 0

    @property
    def idle(self) -> bool:
        return self.running == 0 and self.waiting == 0

    async def run(self, fn: Callable[..., T], *args: object, optional: bool = False) -> T | None:
        """Run `fn` on a worker thread. `optional` work (interim results) runs only on an idle pool, else None."""
        if optional:
            if not self.idle:
                return None
            await self._sem.acquire()
        else:
            self.waiting += 1
            try:
                await asyncio.wait_for(self._sem.acquire(), self.queue_timeout_s)
            except TimeoutError:
                raise WorkerPoolBusy(
                    f"all {self.workers} ASR workers stayed busy for {self.queue_timeout_s:.1f}s"
                ) from None
            finally:
                self.waiting -= 1
        loop = asyncio.get_running_loop()
        self.running += 1

        def _release(_: object) -> None:
            self.running -= 1
            self._sem.release()

        try:
            cfut = self._executor.submit(fn, *args)
        except BaseException:
            _release(None)
            raise
        cfut.add_done_callback(lambda f: loop.call_soon_threadsafe(_release, f))
        return await asyncio.wrap_future(cfut)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
