"""The STT degradation chain: Pipecat's Riva client with a list of endpoints instead of one.

- The call starts on the first endpoint whose circuit breaker is not open (a dead one costs nothing).
- Before streaming, the gRPC channel must connect within the endpoint's `timeout_s` (success for its breaker).
- A stream that fails before it ever produced a result (or lived `healthy_after_s`) is the endpoint's failure:
  the call switches to the next endpoint mid-call, and the audio since the last final transcript is replayed to
  it, so the caller's current sentence is not lost.
- A working stream that drops is reconnected to the same endpoint with exponential backoff (this replaces
  Pipecat's immediate reconnect, which logs "stream dropped" in a tight loop when the server is gone).
- With no endpoint left, the agent says `degradation_message_stt` and transfers the call (or ends it).
- When the VAD hears the caller stop (`finalize_on_vad_stop`), the stream is half-closed, which makes a Riva
  server finalize the open utterance at once instead of after its own endpointing silence; the caller's next
  audio already goes to a fresh stream. The old stream's results are still read until the server ends it.
- Interim results (`interims`): "while_agent_speaks" asks for them only while the agent is talking, where
  barge-in counts the caller's words; otherwise each one is a Whisper decode competing with the final's
  (the stream is switched the same way when the agent starts or stops).
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, cast

import grpc
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    StartFrame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.services.nvidia.stt import AudioChunkIterator, NvidiaSTTService, NvidiaSTTSettings

from core.agent_config import STTConfig
from pipelines.degradation import DegradationPolicy
from pipelines.resilience import BreakerRegistry


@dataclass(frozen=True)
class STTEndpoint:
    server: str  # host:port
    timeout_s: float


def stt_endpoints(config: STTConfig, default_server: str) -> list[STTEndpoint]:
    return [STTEndpoint(e.base_url or default_server, e.timeout_s) for e in (config.endpoint, *config.fallbacks)]


class ThreadAudioIterator(AudioChunkIterator):
    """Pipecat's audio iterator, on a thread-safe queue: the gRPC thread blocks on it directly. Pipecat's schedules
    a coroutine on the event loop for every 20 ms chunk (a task, a future and a cross-thread wake-up each)."""

    def __init__(self, event_loop: asyncio.AbstractEventLoop) -> None:
        self._event_loop = event_loop
        self._chunks: queue.SimpleQueue[bytes | object] = queue.SimpleQueue()
        self._closed = False

    async def put(self, audio: bytes) -> None:
        if not self._closed:
            self._chunks.put(audio)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._chunks.put(self._QUEUE_SENTINEL)

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        audio = self._chunks.get()
        if audio is self._QUEUE_SENTINEL:
            self._closed = True
            raise StopIteration
        assert isinstance(audio, bytes)
        return audio


class FallbackRivaSTTService(NvidiaSTTService):
    MAX_SAME_ENDPOINT_RETRIES = 5

    def __init__(self, *, endpoints: list[STTEndpoint], breakers: BreakerRegistry, policy: DegradationPolicy,
                 message: str, healthy_after_s: float = 2.0, replay_max_s: float = 15.0,
                 finalize_on_vad_stop: bool = False,
                 interims: Literal["always", "while_agent_speaks"] = "always", **kwargs: Any) -> None:
        kwargs["server"] = endpoints[0].server
        super().__init__(**kwargs)
        self.endpoints = endpoints
        self._breakers = breakers
        self._policy = policy
        self._message = message
        self._healthy_after_s = healthy_after_s
        self._replay_max_s = replay_max_s
        self._index = 0
        self._since_final: deque[bytes] = deque()
        self._since_final_bytes = 0
        self._same_retries = 0
        self.exhausted = False
        self.used: list[str] = []  # servers streamed to, in order (tests, logs)
        self.finalize_on_vad_stop = finalize_on_vad_stop
        self.interims = interims
        self._agent_speaking = False
        self.finalized_streams = 0
        self._draining: set[asyncio.Task[None]] = set()  # half-closed streams whose last results are due

    @property
    def current(self) -> STTEndpoint:
        return self.endpoints[self._index]

    # -- choosing an endpoint ---------------------------------------------------------------------------------
    def _next_allowed(self, start: int) -> int | None:
        for index in range(start, len(self.endpoints)):
            endpoint = self.endpoints[index]
            breaker = self._breakers.get(endpoint.server)
            if breaker.allow():
                return index
            nxt = self.endpoints[index + 1].server if index + 1 < len(self.endpoints) else "give_up"
            self._policy.report("stt", endpoint.server, nxt, f"circuit open ({breaker.snapshot().last_error})")
        return None

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        chosen = self._next_allowed(0)
        if chosen is None:
            self.exhausted = True
        else:
            self._index = chosen
            self._server = self.current.server
        await super().setup(setup)
        self._audio_iterator = ThreadAudioIterator(self.get_event_loop())
        if self._stt_settings.interim_results != self._want_interims():
            self._stt_settings.interim_results = self._want_interims()
            self._config = self._create_recognition_config()

    async def start(self, frame: StartFrame) -> None:
        if self.exhausted:
            await super(NvidiaSTTService, self).start(frame)  # no stream to open
            self._give_up("every STT endpoint's circuit is open")
            return
        await super().start(frame)

    def _give_up(self, reason: str) -> None:
        self.exhausted = True
        self._since_final.clear()
        self._since_final_bytes = 0
        self._policy.give_up("stt", reason, self._message)

    # -- audio since the last final, for replay after a switch -----------------------------------------------
    async def run_stt(self, audio: bytes):  # type: ignore[no-untyped-def, override]
        if self.exhausted:
            yield None
            return
        self._since_final.append(audio)
        self._since_final_bytes += len(audio)
        limit = int(self._replay_max_s * (self.sample_rate or 8000) * 2)
        while self._since_final_bytes > limit and self._since_final:
            self._since_final_bytes -= len(self._since_final.popleft())
        async for frame in super().run_stt(audio):
            yield frame

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if isinstance(frame, TranscriptionFrame):
            self._since_final.clear()
            self._since_final_bytes = 0
        await super().push_frame(frame, direction)

    # -- streaming --------------------------------------------------------------------------------------------
    def _response_handler(self, iterator: AudioChunkIterator, config: Any) -> None:
        endpoint = self.current
        breaker = self._breakers.get(endpoint.server)
        loop = self.get_event_loop()
        started = time.monotonic()
        connected = got_result = False
        drop_reason: str | None = None
        try:
            asr = self._asr_service
            assert asr is not None, "ASR service not initialized"
            try:
                grpc.channel_ready_future(asr.auth.channel).result(timeout=endpoint.timeout_s)
            except grpc.FutureTimeoutError:
                raise ConnectionError(f"could not connect within {endpoint.timeout_s:g}s") from None
            breaker.record_success()  # the server is there; a broken stream below still counts against it
            connected, started = True, time.monotonic()
            diarization = bool(config and config.config.diarization_config.enable_speaker_diarization)
            for response in asr.streaming_response_generator(audio_chunks=iterator, streaming_config=config):
                if not response.results:
                    continue
                if not got_result:
                    got_result, self._same_retries = True, 0  # a working stream: its later drops start afresh
                asyncio.run_coroutine_threadsafe(
                    self._handle_response(response, speaker_diarization=diarization), loop)
            drop_reason = "server closed the gRPC stream"
        except grpc.RpcError as e:
            status = e.code().name if hasattr(e, "code") else "UNKNOWN"
            details = e.details() if hasattr(e, "details") else str(e)
            drop_reason = f"gRPC {status}: {details}"
        except Exception as e:
            drop_reason = f"{type(e).__name__}: {e}"
        healthy = connected and (got_result or time.monotonic() - started >= self._healthy_after_s)
        asyncio.run_coroutine_threadsafe(self._on_stream_drop(iterator, drop_reason, healthy), loop)

    async def _on_stream_drop(self, iterator: AudioChunkIterator, reason: str, healthy: bool) -> None:
        if iterator.closed or iterator is not self._audio_iterator or self.exhausted:
            return
        endpoint = self.current
        if healthy and self._same_retries < self.MAX_SAME_ENDPOINT_RETRIES:
            self._same_retries += 1
            delay = min(0.25 * 2 ** (self._same_retries - 1), 4.0)
            logger.warning(f"{self} stream to {endpoint.server} dropped ({reason}); reconnecting in {delay:.2f}s")
            await asyncio.sleep(delay)
            if iterator is self._audio_iterator and not iterator.closed:
                await self._request_reconnect()
            return
        self._breakers.get(endpoint.server).record_failure(reason)
        chosen = self._next_allowed(self._index + 1)
        nxt = self.endpoints[chosen].server if chosen is not None else "give_up"
        self._policy.report("stt", endpoint.server, nxt, reason)
        if chosen is None:
            logger.warning(f"{self} no STT endpoint left ({reason})")
            await self._stop_tasks(close_iterator=True)
            self._give_up(reason)
            return
        self._index, self._same_retries = chosen, 0
        self._server = self.current.server
        await self._request_reconnect()

    # -- switching streams: finalizing at the VAD's stop, interims while the agent speaks ----------------------
    @property
    def _stt_settings(self) -> NvidiaSTTSettings:
        return cast(NvidiaSTTSettings, self._settings)

    def _want_interims(self) -> bool:
        return self.interims == "always" or self._agent_speaking

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)):
            self._agent_speaking = isinstance(frame, BotStartedSpeakingFrame)
            # Not while the caller talks (that would cut their sentence in two); the VAD stop switches then.
            if self._stt_settings.interim_results != self._want_interims() and not self._user_speaking:
                await self._rotate_stream()

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        await super()._handle_vad_user_stopped_speaking(frame)
        if self.finalize_on_vad_stop or self._stt_settings.interim_results != self._want_interims():
            await self._rotate_stream()

    async def _rotate_stream(self) -> None:
        """Half-closes the current stream (the server finalizes it) and starts a fresh one with today's options."""
        old = self._audio_iterator
        if old is None or old.closed or self.exhausted or self._thread_task is None:
            return
        self._stt_settings.interim_results = self._want_interims()
        self._config = self._create_recognition_config()
        self._audio_iterator = ThreadAudioIterator(self.get_event_loop())
        draining = self._thread_task
        self._draining.add(draining)
        draining.add_done_callback(self._draining.discard)
        self._thread_task = self.create_task(self._thread_task_handler())  # type: ignore[assignment]
        await old.close()
        self.finalized_streams += 1

    async def _stop_tasks(self, close_iterator: bool = True) -> None:
        await super()._stop_tasks(close_iterator=close_iterator)
        if close_iterator:
            for task in list(self._draining):
                await self.cancel_task(task)

    async def _do_reconnect(self) -> None:
        iterator = self._audio_iterator
        if iterator is None or iterator.closed or self.exhausted:
            return
        await self._stop_tasks(close_iterator=False)
        # A fresh stream starts with what the caller said since the last final (some of it went to the old
        # stream and died with it); the old queue holds nothing that is not in that buffer.
        fresh = ThreadAudioIterator(self.get_event_loop())
        for chunk in self._since_final:
            await fresh.put(chunk)
        self._audio_iterator = fresh
        await iterator.close()
        self._initialize_client()
        self._config = self._create_recognition_config()
        self._thread_task = self.create_task(self._thread_task_handler())  # type: ignore[assignment]

    async def _thread_task_handler(self) -> None:
        if self._audio_iterator is not None and (not self.used or self.used[-1] != self.current.server):
            self.used.append(self.current.server)
        await super()._thread_task_handler()


def stt_chain_args(config: STTConfig, default_server: str, *, breakers: BreakerRegistry, policy: DegradationPolicy,
                   message: str) -> dict[str, Any]:
    """Arguments for `SpeechFactory.stt` / `create_stt_service` that build the chain instead of one endpoint."""
    return {"service_class": FallbackRivaSTTService, "endpoints": stt_endpoints(config, default_server),
            "breakers": breakers, "policy": policy, "message": message}
