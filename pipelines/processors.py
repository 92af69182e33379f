"""Small processors, one job each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputDTMFFrame,
    LLMMessagesAppendFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.tts_service import TTSService
from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

from pipelines.streaming import StreamingAudio


class DTMFToLLM(FrameProcessor):
    """Keypresses reach the LLM as text: digits are collected until '#' or a short pause, then appended to the
    conversation as a user message (which runs the LLM). The first digit interrupts the agent."""

    def __init__(self, *, timeout_s: float = 1.5, on_digits: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._timeout_s = timeout_s
        self._digits = ""
        self._timer: asyncio.Task[None] | None = None
        self._on_digits = on_digits or (lambda digits: None)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            await self._add(frame.button.value)
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._cancel_timer()
        await self.push_frame(frame, direction)

    async def _add(self, digit: str) -> None:
        if not self._digits:
            await self.broadcast_interruption()
        await self._cancel_timer()
        if digit == "#":
            await self._flush()
            return
        self._digits += digit
        self._timer = self.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._timeout_s)
        self._timer = None
        await self._flush()

    async def _flush(self) -> None:
        digits, self._digits = self._digits, ""
        if not digits:
            return
        self._on_digits(digits)
        text = f"[The caller pressed the keys: {' '.join(digits)}]"
        await self.push_frame(LLMMessagesAppendFrame(messages=[{"role": "user", "content": text}], run_llm=True))

    async def _cancel_timer(self) -> None:
        if self._timer is not None:
            task, self._timer = self._timer, None
            await self.cancel_task(task)


class AudioEnd(FrameProcessor):
    """Agent audio goes no further downstream. Placed after the output transport, its last user: every later hop
    of a 40 ms frame costs a queue, a task switch and two observer events, which is most of a call's CPU. (Caller
    audio ends in the user aggregator, TrackedUserAggregator.)"""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM and isinstance(frame, OutputAudioRawFrame):
            return
        await self.push_frame(frame, direction)


class BotSpeechTracker(FrameProcessor):
    """Counts the agent's utterances as the carrier plays them (after the transport), for greeting protection
    and the session's view of who is talking."""

    def __init__(self) -> None:
        super().__init__()
        self.speaking = False
        self.utterances = 0
        self.first_utterance_done = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self.speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.speaking = False
            self.utterances += 1
            self.first_utterance_done.set()
        await self.push_frame(frame, direction)


def _norm(text: str) -> str:
    return " ".join(text.split()).strip().lower()


class PreparedAudio:
    """Text synthesised before the call started (the greeting, at answer-webhook time) plays from memory instead
    of a round trip to the TTS server; anything else goes to the TTS service as usual. Wraps the service's
    `run_tts` on this one instance, so it works with whatever TTS service class the agent uses."""

    def __init__(self, service: TTSService, chunk_ms: int = 100) -> None:
        self._service = service
        self._prepared: dict[str, bytes | StreamingAudio] = {}
        self._chunk_ms = chunk_ms
        self._run_tts = service.run_tts
        service.run_tts = self.run_tts  # type: ignore[method-assign]
        self.hits = 0

    def add(self, text: str, audio: bytes | StreamingAudio) -> None:
        self._prepared[_norm(text)] = audio

    async def _chunks(self, audio: bytes | StreamingAudio, step: int) -> AsyncGenerator[bytes, None]:
        if isinstance(audio, bytes):
            for i in range(0, len(audio), step):
                yield audio[i: i + step]
            return
        pending = b""
        async for chunk in audio.chunks():
            pending += chunk
            while len(pending) >= step:
                yield pending[:step]
                pending = pending[step:]
        if pending:
            yield pending

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        prepared = self._prepared.pop(_norm(text), None)
        if isinstance(prepared, StreamingAudio) and (prepared.error or prepared.sample_rate !=
                                                     self._service.sample_rate):
            prepared = None  # failed or for another rate: synthesise live
        if prepared is None:
            async for frame in self._run_tts(text, context_id):
                yield frame
            return
        self.hits += 1
        service = self._service
        step = int(service.sample_rate * 2 * self._chunk_ms / 1000) or 1600
        step -= step % 2
        first = True
        async for chunk in self._chunks(prepared, step):
            if first:
                await service.stop_ttfb_metrics()
                first = False
            yield TTSAudioRawFrame(chunk, service.sample_rate, 1, context_id=context_id)
        if isinstance(prepared, StreamingAudio) and prepared.error:
            if first:
                # It failed after the call began to play it (a slow 5xx), before any audio: say it live, on the
                # TTS chain with its fallbacks, rather than leave the caller in silence.
                logger.warning(f"prepared speech failed before any audio ({prepared.error}); synthesising it live")
                async for frame in self._run_tts(text, context_id):
                    yield frame
            else:  # half an utterance is not redone (the caller would hear its start twice)
                logger.warning(f"prepared speech broke off: {prepared.error}")


class FastFirstChunkAggregator(SimpleTextAggregator):
    """Sentence aggregation for TTS, except that the first piece of each reply goes out at the first clause break
    (", ; :") once it has `min_words` words, or after `max_words` words: the caller hears the answer start while
    the LLM is still writing the rest of the sentence. Later pieces are whole sentences, as usual."""

    CLAUSE_BREAKS = ",;:"

    def __init__(self, *, min_words: int = 4, max_words: int = 12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._min_words = min_words
        self._max_words = max_words
        self._first = True

    def _first_cut(self) -> int:
        text = self._text
        if not text or not text[-1].isspace():
            return 0  # only cut once the word (and its punctuation) is complete
        words = text.split()
        if len(words) >= self._max_words:
            return len(text)
        if len(words) >= self._min_words and words[-1][-1] in self.CLAUSE_BREAKS:
            return len(text)
        return 0

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        if self._aggregation_type == TextType.TOKEN:
            async for aggregation in super().aggregate(text):
                yield aggregation
            return
        for char in text:
            async for aggregation in super().aggregate(char):
                self._first = False
                yield aggregation
            if self._first:
                cut = self._first_cut()
                if cut:
                    chunk, self._text = self._text[:cut].strip(), ""
                    self._first = False
                    await super().reset()
                    if chunk:
                        yield Aggregation(text=chunk, type=TextType.SENTENCE)

    async def flush(self) -> Aggregation | None:
        result = await super().flush()
        self._first = True  # the next reply starts fresh
        return result

    async def handle_interruption(self) -> None:
        await super().handle_interruption()
        self._first = True
