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
  (the stream is switched the same way when the agent starts or stops; off only once the caller's turn is over:
  switched in a mere pause, the sentence of a caller who barged in was finalized in two, "Sorry, what?" and
  "matter you're opening ours", and the turn took only the first half). While an outbound call's voicemail
  verdict is pending (`screening`), interims are asked for too: a voicemail cue in them decides early
  (pipelines/voicemail.py); the stream switches back at the caller's next turn end once the verdict is in. Such a
  stream asks the platform's ASR server for an interim every `SCREENING_INTERIM_MS` (RecognitionConfig
  custom_configuration `interim_interval_ms`; the server's default is 1 s, and it still skips interims while
  its decodes are slow).
- Pause transcripts (`pause_transcripts`, on with a speculative reply): the platform's ASR server sends the decode
  it makes at the caller's first short pause as an interim at once (custom_configuration `pause_transcripts`,
  stability `PAUSE_STABILITY`), before its endpointing silence has passed; the reply can start on it
  (pipelines/turns.py). It costs the server no extra decode.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    StartFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.services.nvidia.stt import AudioChunkIterator, NvidiaSTTService, NvidiaSTTSettings

from core.agent_config import STTConfig
from core.egress import EgressPolicy, EgressRefused
from pipelines.degradation import DegradationPolicy
from pipelines.frames import InterimsWantedFrame
from pipelines.resilience import BreakerRegistry
from pipelines.stt_models import RivaModelCatalog


@dataclass(frozen=True)
class STTEndpoint:
    server: str  # host:port
    timeout_s: float
    model: str | None = None  # the agent's choice; None: the platform's or the server's (pipelines/stt_models.py)
    platform: bool = True  # the platform's RIVA_SERVER; False: the agent's own, reached through the egress guard
    org_key: str | None = field(default=None, repr=False)  # a custom server's api_key_ref secret


def stt_endpoints(config: STTConfig, default_server: str, secrets: dict[str, str] | None = None) -> list[STTEndpoint]:
    return [STTEndpoint(e.base_url or default_server, e.timeout_s, e.model or None,
                        platform=(e.base_url or default_server) == default_server,
                        org_key=(secrets or {}).get(e.api_key_ref) if e.api_key_ref else None)
            for e in (config.endpoint, *config.fallbacks)]


async def egress_target(server: str, egress: EgressPolicy | None) -> str:
    """host:port of an agent's own Riva server as the checked address to dial (so a later DNS answer cannot move
    it inside the network). Raises EgressRefused."""
    if egress is None:
        raise EgressRefused("custom STT endpoints need an egress policy")
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        raise EgressRefused(f"{server!r} is not host:port")
    address = await egress.resolve(host, int(port))
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# When the stream asks for interim transcripts (voice_server's STT_INTERIMS).
STTInterims = Literal["always", "while_agent_speaks"]
# The interim cadence a stream asks for while a voicemail verdict is pending (the ASR server's default: 1000 ms).
SCREENING_INTERIM_MS = 250


class AsyncAudioQueue(AudioChunkIterator):
    """Pipecat's audio iterator, read by an asyncio gRPC stream instead of a worker thread. Pipecat's streams on
    two threads per call (requests and responses) that take the GIL for every 20 ms chunk; with tens of calls in
    one process that GIL traffic costs more than the audio work itself."""

    async def put(self, audio: bytes) -> None:
        if not self._closed:
            self._queue.put_nowait(audio)

    async def next_chunk(self) -> bytes | None:
        """The next chunk, or None once closed (the stream then half-closes)."""
        item = await self._queue.get()
        if item is self._QUEUE_SENTINEL:
            return None
        assert isinstance(item, bytes)
        return item


class FallbackRivaSTTService(NvidiaSTTService):
    MAX_SAME_ENDPOINT_RETRIES = 5

    def __init__(self, *, endpoints: list[STTEndpoint], breakers: BreakerRegistry, policy: DegradationPolicy,
                 message: str, healthy_after_s: float = 2.0, replay_max_s: float = 15.0,
                 finalize_on_vad_stop: bool = False,
                 interims: STTInterims = "always", models: RivaModelCatalog | None = None,
                 egress: EgressPolicy | None = None, platform_token: Callable[[], str] | None = None,
                 **kwargs: Any) -> None:
        """`platform_token`: the platform server's credential, fresh per stream (a service token)."""
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
        self.screening = False
        self.pause_transcripts = False
        self._agent_speaking = False
        self._caller_turn = False  # from the caller's first voice to their turn end, pauses included
        # The live view (voice_server/live_feed.py): interims go to it, and are asked for while someone watches.
        self.on_interim: Callable[[str], None] | None = None
        self.watched: Callable[[], bool] = lambda: False
        self.half_closed_streams = 0
        self._draining: set[asyncio.Task[None]] = set()  # half-closed streams whose last results are due
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._models = models or RivaModelCatalog()
        self._egress = egress
        self._platform_token = platform_token

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
        self._audio_iterator = AsyncAudioQueue(self.get_event_loop())
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
        elif isinstance(frame, InterimTranscriptionFrame) and self.on_interim is not None and frame.text.strip():
            self.on_interim(frame.text.strip())
        await super().push_frame(frame, direction)

    # -- streaming --------------------------------------------------------------------------------------------
    def _initialize_client(self) -> None:
        """Pipecat's blocking Riva client is not used: `_stream` speaks gRPC on the event loop."""

    def _channel(self, server: str, target: str) -> grpc.aio.Channel:
        """One channel per call and server (a reconnect makes a fresh one: a failed channel backs off). `target`:
        the address dialled (the checked address for an agent's own server)."""
        channel = self._channels.get(server)
        if channel is None:
            channel = (grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(),
                                               options=[("grpc.ssl_target_name_override", server.rpartition(":")[0])]
                                               if target != server else None)
                       if self._use_ssl else grpc.aio.insecure_channel(target))
            self._channels[server] = channel
        return channel

    async def _drop_channel(self, server: str) -> None:
        channel = self._channels.pop(server, None)
        if channel is not None:
            await channel.close()

    def _platform_key(self) -> str | None:
        return self._platform_token() if self._platform_token is not None else self._api_key

    async def _stream(self, iterator: AsyncAudioQueue, config: Any) -> None:
        endpoint = self.current
        breaker = self._breakers.get(endpoint.server)
        started = time.monotonic()
        connected = got_result = False
        drop_reason: str | None = None
        call: Any = None
        try:
            target = endpoint.server if endpoint.platform else await egress_target(endpoint.server, self._egress)
            channel = self._channel(endpoint.server, target)
            try:
                await asyncio.wait_for(channel.channel_ready(), endpoint.timeout_s)
            except TimeoutError:
                raise ConnectionError(f"could not connect within {endpoint.timeout_s:g}s") from None
            # The platform's credentials (if any) only go to the platform's server,
            # an organisation's own key (its api_key_ref secret) only to its own server.
            key = self._platform_key() if endpoint.platform else endpoint.org_key
            metadata = (("authorization", f"Bearer {key}"),) if key else None
            # A server that serves no model for the agent's language fails like an unreachable one.
            config = await self._with_model(config, endpoint, channel, metadata)
            breaker.record_success()  # the server is there; a broken stream below still counts against it
            connected, started = True, time.monotonic()
            diarization = bool(config and config.config.diarization_config.enable_speaker_diarization)

            async def requests() -> AsyncIterator[rasr.StreamingRecognizeRequest]:
                yield rasr.StreamingRecognizeRequest(streaming_config=config)
                while (chunk := await iterator.next_chunk()) is not None:
                    yield rasr.StreamingRecognizeRequest(audio_content=chunk)

            call = rasr_grpc.RivaSpeechRecognitionStub(channel).StreamingRecognize(requests(), metadata=metadata)
            async for response in call:
                if not response.results:
                    continue
                if not got_result:
                    got_result, self._same_retries = True, 0  # a working stream: its later drops start afresh
                await self._handle_response(response, speaker_diarization=diarization)
            drop_reason = "server closed the gRPC stream"
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            raise
        except grpc.aio.AioRpcError as e:
            drop_reason = f"gRPC {e.code().name}: {e.details()}"
        except Exception as e:
            drop_reason = f"{type(e).__name__}: {e}"
        healthy = connected and (got_result or time.monotonic() - started >= self._healthy_after_s)
        # Its own task: handling the drop may cancel this one (a reconnect stops the stream task).
        self.create_task(self._on_stream_drop(iterator, drop_reason, healthy))

    async def _with_model(self, config: Any, endpoint: STTEndpoint, channel: grpc.aio.Channel,
                          metadata: tuple[tuple[str, str], ...] | None) -> Any:
        """The recognition config naming the model this endpoint serves for the agent's language."""
        language = self._stt_settings.language
        model = endpoint.model or await self._models.model_for(
            endpoint.server, str(getattr(language, "value", language)), channel, metadata, endpoint.timeout_s)
        self._stt_settings.model = model
        named = rasr.StreamingRecognitionConfig()
        named.CopyFrom(config)
        named.config.model = model
        if self.screening:  # a voicemail cue in an interim decides early: ask for interims twice as often
            named.config.custom_configuration["interim_interval_ms"] = str(SCREENING_INTERIM_MS)
        if self.pause_transcripts:
            named.config.custom_configuration["pause_transcripts"] = "true"
        return named

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
        self._models.forget(endpoint.server)  # a redeployed server may serve other models: ask again next time
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
        return self.interims == "always" or self._agent_speaking or self.screening or self.watched()

    def stop_screening(self) -> None:
        self.screening = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterimsWantedFrame):
            await self._maybe_switch_interims()
            return
        await super().process_frame(frame, direction)
        if isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)):
            self._agent_speaking = isinstance(frame, BotStartedSpeakingFrame)
        elif isinstance(frame, UserStoppedSpeakingFrame):  # the user aggregator sends it upstream too
            self._caller_turn = False
        if isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame, UserStoppedSpeakingFrame)):
            await self._maybe_switch_interims()

    async def _maybe_switch_interims(self) -> None:
        """Never while the caller talks, and interims are switched off only once the caller's turn is over: a switch
        half-closes the stream, which finalizes the sentence where it stands. The agent stops when a caller barges
        in, often in a pause of theirs (a comma: the VAD has stopped), and a switch there cut "Sorry, what are your
        opening hours" after "what"."""
        want = self._want_interims()
        if self._stt_settings.interim_results != want and not self._user_speaking and (want or not self._caller_turn):
            await self._rotate_stream()

    async def _handle_vad_user_started_speaking(self, frame: VADUserStartedSpeakingFrame) -> None:
        await super()._handle_vad_user_started_speaking(frame)
        self._caller_turn = True

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        await super()._handle_vad_user_stopped_speaking(frame)
        if self.finalize_on_vad_stop:
            await self._rotate_stream()

    async def _rotate_stream(self) -> None:
        """Half-closes the current stream (the server finalizes it) and starts a fresh one with the current options."""
        old = self._audio_iterator
        if old is None or old.closed or self.exhausted or self._thread_task is None:
            return
        self._stt_settings.interim_results = self._want_interims()
        self._config = self._create_recognition_config()
        self._audio_iterator = AsyncAudioQueue(self.get_event_loop())
        draining = self._thread_task
        self._draining.add(draining)
        draining.add_done_callback(self._draining.discard)
        self._thread_task = self.create_task(self._thread_task_handler())  # type: ignore[assignment]
        await old.close()
        self.half_closed_streams += 1

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
        fresh = AsyncAudioQueue(self.get_event_loop())
        for chunk in self._since_final:
            await fresh.put(chunk)
        self._audio_iterator = fresh
        await iterator.close()
        await self._drop_channel(self.current.server)
        self._config = self._create_recognition_config()
        self._thread_task = self.create_task(self._thread_task_handler())  # type: ignore[assignment]

    async def _thread_task_handler(self) -> None:
        """The stream, on the event loop (Pipecat's start/stop manage it under this name)."""
        iterator = self._audio_iterator
        if not isinstance(iterator, AsyncAudioQueue):
            return
        if not self.used or self.used[-1] != self.current.server:
            self.used.append(self.current.server)
        await self._stream(iterator, self._config)

    async def cleanup(self) -> None:
        await super().cleanup()
        for server in list(self._channels):
            await self._drop_channel(server)


def stt_chain_args(config: STTConfig, default_server: str, *, breakers: BreakerRegistry, policy: DegradationPolicy,
                   message: str, egress: EgressPolicy | None = None,
                   secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """Arguments for `SpeechFactory.stt` / `create_stt_service` that build the chain instead of one endpoint."""
    return {"service_class": FallbackRivaSTTService, "endpoints": stt_endpoints(config, default_server, secrets),
            "breakers": breakers, "policy": policy, "message": message, "egress": egress}
