"""Riva's `nvidia.riva.asr.RivaSpeechRecognition` gRPC service (stubs from nvidia-riva-client) over Whisper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import riva.client.proto.riva_audio_pb2 as raudio
from riva.client.proto import health_pb2, health_pb2_grpc

from speech.asr import metrics
from speech.asr.config import AsrSettings
from speech.asr.endpointer import EndpointerParams
from speech.asr.engine import DecodeOptions, Transcript, WhisperEngine, WorkerPool, WorkerPoolBusy
from speech.asr.stream import (
    RecognitionStream,
    StreamConfig,
    StreamError,
    StreamResult,
    decode_audio_bytes,
    format_transcript,
    run_offline,
)
from speech.asr.vad import SileroModel
from speech.common.audio import AudioFormatError, parse_wav_header, sniff_non_audio

log = logging.getLogger("speech.asr.service")

SUPPORTED_RATES = (8000, 16000)
SERVICE_NAME = "nvidia.riva.asr.RivaSpeechRecognition"
_ENCODINGS = {
    raudio.AudioEncoding.LINEAR_PCM: "pcm16",
    raudio.AudioEncoding.MULAW: "mulaw",
    raudio.AudioEncoding.ENCODING_UNSPECIFIED: "pcm16",
}


class BadRequest(ValueError):
    """Becomes INVALID_ARGUMENT with this message."""


@dataclass
class AsrRuntime:
    """What every call shares: one model, one VAD session, one worker pool."""

    settings: AsrSettings
    engine: WhisperEngine
    vad: SileroModel
    pool: WorkerPool
    ready: bool = False
    active_streams: int = 0

    def endpointer_params(self, stop_ms: int) -> EndpointerParams:
        s = self.settings
        return EndpointerParams(
            threshold=s.asr_vad_threshold,
            neg_threshold=max(0.05, s.asr_vad_threshold - 0.15),
            min_speech_ms=s.asr_min_speech_ms,
            stop_ms=stop_ms,
            pause_ms=min(s.asr_pause_ms, stop_ms),
            preroll_ms=s.asr_preroll_ms,
            max_utterance_s=s.asr_max_utterance_s,
        )


def _language(code: str, engine: WhisperEngine) -> str:
    base = (code or "en-US").split("-")[0].split("_")[0].lower()
    if base not in engine.languages:
        raise BadRequest(
            f"language_code {code!r} is not supported by this model; supported: "
            + ", ".join(sorted(engine.languages))
            + (" (English-only Whisper model; use en-US)" if engine.languages == ["en"] else "")
        )
    return base


# RecognitionConfig.custom_configuration key: this stream's interim cadence in ms (e.g. pipelines/stt_chain.py asks
# for 500 while an outbound call's voicemail verdict is pending). Shorter than this costs more than it is worth.
INTERIM_INTERVAL_KEY = "interim_interval_ms"
# ... and "true" asks for pause transcripts (stream.py `StreamConfig.pause_transcripts`), e.g. for a speculative reply.
PAUSE_TRANSCRIPTS_KEY = "pause_transcripts"
MIN_INTERIM_INTERVAL_MS = 250


def validate_config(
    cfg: rasr.RecognitionConfig, runtime: AsrRuntime, interim_results: bool, audio_head: bytes
) -> tuple[StreamConfig, int]:
    """Check a RecognitionConfig (and a WAV header at the start of the audio, if any).

    Returns the stream config and how many header bytes to skip.
    """
    s = runtime.settings
    if cfg.model and cfg.model != s.asr_model_name:
        raise BadRequest(f"unknown model {cfg.model!r}; available: {s.asr_model_name!r} (or leave model empty)")
    if cfg.encoding not in _ENCODINGS:
        name = raudio.AudioEncoding.Name(cfg.encoding) if cfg.encoding in raudio.AudioEncoding.values() else cfg.encoding
        raise BadRequest(f"encoding {name} is not supported; use LINEAR_PCM (16-bit little-endian) or MULAW")
    encoding = _ENCODINGS[cfg.encoding]
    rate = cfg.sample_rate_hertz
    channels = cfg.audio_channel_count or 1
    skip = 0
    if audio_head[:4] == b"RIFF":
        try:
            wav = parse_wav_header(audio_head)
        except AudioFormatError as exc:
            raise BadRequest(f"audio starts with a WAV header that cannot be used: {exc}") from exc
        encoding, rate, channels, skip = wav.encoding, wav.sample_rate, wav.channels, wav.data_offset
    else:
        what = sniff_non_audio(audio_head)
        if what:
            raise BadRequest(f"the audio bytes look like {what}; send raw {encoding.upper()} samples or a WAV file")
    if rate not in SUPPORTED_RATES:
        raise BadRequest(
            f"sample_rate_hertz {rate} is not supported; use 8000 or 16000"
            + (" (it is required for raw audio)" if rate == 0 else "")
        )
    if not 1 <= channels <= 2:
        raise BadRequest(f"audio_channel_count {channels} is not supported; use 1 (or 2, mixed down)")
    if cfg.max_alternatives > 1:
        log.debug("max_alternatives > 1 requested; returning one alternative")
    language = _language(cfg.language_code, runtime.engine)
    phrases = [p.strip() for ctx in cfg.speech_contexts for p in ctx.phrases if p.strip()]
    stop_ms = s.asr_stop_ms
    if cfg.HasField("endpointing_config") and cfg.endpointing_config.stop_history > 0:
        stop_ms = max(100, min(3000, cfg.endpointing_config.stop_history))
    interval = cfg.custom_configuration.get(INTERIM_INTERVAL_KEY)
    if interval is not None and not (interval.isdigit() and MIN_INTERIM_INTERVAL_MS <= int(interval) <= 5000):
        raise BadRequest(f"custom_configuration {INTERIM_INTERVAL_KEY} {interval!r} is not a whole number of "
                         f"milliseconds from {MIN_INTERIM_INTERVAL_MS} to 5000")
    pause = cfg.custom_configuration.get(PAUSE_TRANSCRIPTS_KEY, "false").lower()
    if pause not in ("true", "false"):
        raise BadRequest(f"custom_configuration {PAUSE_TRANSCRIPTS_KEY} {pause!r} must be true or false")
    config = StreamConfig(
        encoding=encoding,
        sample_rate=rate,
        channels=channels,
        language=language,
        interim_results=interim_results,
        punctuation=cfg.enable_automatic_punctuation,
        word_offsets=cfg.enable_word_time_offsets,
        hotwords=", ".join(dict.fromkeys(phrases)) or None,
        stop_ms=stop_ms,
        interim_interval_ms=int(interval) if interval is not None else None,
        pause_transcripts=pause == "true",
    )
    return config, skip


def _result_proto(result: StreamResult, language: str) -> rasr.StreamingRecognitionResult:
    alt = rasr.SpeechRecognitionAlternative(transcript=result.transcript, confidence=result.confidence)
    alt.language_code.append(language)
    for w in result.words:
        alt.words.append(rasr.WordInfo(word=w.word, start_time=w.start_ms, end_time=w.end_ms, confidence=w.confidence))
    return rasr.StreamingRecognitionResult(
        alternatives=[alt],
        is_final=result.is_final,
        stability=result.stability,
        channel_tag=1,
        audio_processed=result.audio_processed_s,
    )


class RivaAsrServicer(rasr_grpc.RivaSpeechRecognitionServicer):
    def __init__(self, runtime: AsrRuntime) -> None:
        self.rt = runtime

    async def GetRivaSpeechRecognitionConfig(  # noqa: N802 - gRPC method name
        self, request: rasr.RivaSpeechRecognitionConfigRequest, context: grpc.aio.ServicerContext
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        s = self.rt.settings
        metrics.REQUESTS.labels("GetRivaSpeechRecognitionConfig", "OK").inc()
        response = rasr.RivaSpeechRecognitionConfigResponse()
        if request.model_name and request.model_name != s.asr_model_name:
            return response
        cfg = response.model_config.add()
        cfg.model_name = s.asr_model_name
        cfg.parameters.update(
            {
                "type": "online",
                "streaming": "true",
                "offline": "true",
                "language_code": ",".join("en-US" if lang == "en" else lang for lang in self.rt.engine.languages[:50]),
                "sample_rates": ",".join(str(r) for r in SUPPORTED_RATES),
                "encodings": "LINEAR_PCM,MULAW",
                "engine": "faster-whisper",
                "model_dir": s.model_dir().name,
                "endpointing": f"silero-vad stop_ms={s.asr_stop_ms}",
            }
        )
        return response

    async def Recognize(  # noqa: N802 - gRPC method name
        self, request: rasr.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> rasr.RecognizeResponse:
        code = "OK"
        try:
            audio_bytes = bytes(request.audio)
            if not audio_bytes:
                raise BadRequest("audio is empty")
            config, skip = validate_config(request.config, self.rt, False, audio_bytes[:4096])
            payload = audio_bytes[skip:]
            width = (1 if config.encoding == "mulaw" else 2) * config.channels
            if len(payload) % width:
                raise BadRequest(f"audio length {len(payload)} is not a whole number of {width}-byte frames")
            seconds = len(payload) / width / config.sample_rate
            if seconds > self.rt.settings.asr_max_recognize_s:
                raise BadRequest(
                    f"audio is {seconds:.0f}s long; Recognize accepts up to {self.rt.settings.asr_max_recognize_s:.0f}s"
                    " (use StreamingRecognize for longer audio)"
                )
            audio = decode_audio_bytes(payload, config.encoding, config.channels)
            params = self.rt.endpointer_params(config.stop_ms)
            try:
                pieces = await self.rt.pool.run(self._recognize_sync, config, params, audio)
            except WorkerPoolBusy as exc:
                metrics.REJECTED.labels("queue_timeout").inc()
                code = "RESOURCE_EXHAUSTED"
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; try again later")
            response = rasr.RecognizeResponse()
            if request.HasField("id"):
                response.id.CopyFrom(request.id)
            for start_s, transcript in pieces or []:
                text = format_transcript(transcript.text, config.punctuation)
                if not text:
                    continue
                alt = rasr.SpeechRecognitionAlternative(transcript=text, confidence=transcript.confidence)
                alt.language_code.append(config.language)
                for w in transcript.words:
                    alt.words.append(
                        rasr.WordInfo(
                            word=format_transcript(w.word, config.punctuation),
                            start_time=int(1000 * (start_s + w.start_s)),
                            end_time=int(1000 * (start_s + w.end_s)),
                            confidence=w.probability,
                        )
                    )
                response.results.append(
                    rasr.SpeechRecognitionResult(alternatives=[alt], channel_tag=1, audio_processed=seconds)
                )
            return response
        except BadRequest as exc:
            code = "INVALID_ARGUMENT"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # unreachable: abort raises
        finally:
            metrics.REQUESTS.labels("Recognize", code).inc()

    def _recognize_sync(
        self, config: StreamConfig, params: EndpointerParams, audio: np.ndarray
    ) -> list[tuple[float, Transcript]]:
        import soxr

        options = DecodeOptions(hotwords=config.hotwords, word_timestamps=config.word_offsets)
        out: list[tuple[float, Transcript]] = []
        for start_s, _end_s, piece in run_offline(self.rt.engine, self.rt.vad, config, params, audio):
            if config.sample_rate != 16000:
                piece = soxr.resample(piece, config.sample_rate, 16000, quality="HQ").astype(np.float32)
            result = self.rt.engine.decode(piece, options, config.language)
            metrics.DECODE_SECONDS.labels("offline").observe(result.decode_s)
            metrics.RTF.labels("offline").observe(result.rtf)
            out.append((start_s, result))
        return out

    async def StreamingRecognize(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[rasr.StreamingRecognizeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rasr.StreamingRecognizeResponse]:
        rt = self.rt
        if rt.active_streams >= rt.settings.asr_max_streams:
            metrics.REJECTED.labels("max_streams").inc()
            metrics.REQUESTS.labels("StreamingRecognize", "RESOURCE_EXHAUSTED").inc()
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server already handles {rt.settings.asr_max_streams} streams (ASR_MAX_STREAMS); try again later",
            )
        rt.active_streams += 1
        metrics.ACTIVE_STREAMS.inc()
        code = "OK"
        started = time.perf_counter()
        state = _StreamState()
        reader = asyncio.create_task(self._read_requests(request_iterator, state))
        try:
            while True:
                item = await state.next_item(reader)
                if item is None:
                    break
                if isinstance(item, StreamError):
                    code = item.code
                    await context.abort(getattr(grpc.StatusCode, item.code), item.message)
                assert isinstance(item, StreamResult)
                language = state.config.language if state.config else "en"
                yield rasr.StreamingRecognizeResponse(results=[_result_proto(item, language)])
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            if state.stream is not None:
                await state.stream.close()
            rt.active_streams -= 1
            metrics.ACTIVE_STREAMS.dec()
            metrics.REQUESTS.labels("StreamingRecognize", code).inc()
            log.info(
                "stream closed",
                extra={
                    "code": code,
                    "audio_s": round(state.stream.audio_processed_s, 2) if state.stream else 0.0,
                    "wall_s": round(time.perf_counter() - started, 2),
                },
            )

    async def _read_requests(
        self, request_iterator: AsyncIterator[rasr.StreamingRecognizeRequest], state: _StreamState
    ) -> None:
        """Consume the client's messages: config first, then audio; feeds the recognition stream."""
        streaming_config: rasr.StreamingRecognitionConfig | None = None
        try:
            async for request in request_iterator:
                if request.HasField("streaming_config"):
                    if streaming_config is not None or state.stream is not None:
                        raise BadRequest("streaming_config may only be sent once, in the first message")
                    streaming_config = request.streaming_config
                    continue
                if streaming_config is None:
                    raise BadRequest("the first message must carry streaming_config")
                chunk = bytes(request.audio_content)
                if not chunk:
                    continue
                if state.stream is None:
                    config, skip = validate_config(
                        streaming_config.config, self.rt, streaming_config.interim_results, chunk[:4096]
                    )
                    state.config = config
                    state.stream = RecognitionStream(
                        self.rt.engine,
                        self.rt.pool,
                        self.rt.vad,
                        config,
                        self.rt.endpointer_params(config.stop_ms),
                        # A stream may ask for its own cadence (a voicemail screen wants cues sooner); 0 on
                        # the server still turns interims off.
                        self.rt.settings.asr_interim_interval_ms and (
                            config.interim_interval_ms or self.rt.settings.asr_interim_interval_ms),
                        self.rt.settings.asr_interim_max_decode_s,
                    )
                    state.ready.set()
                    chunk = chunk[skip:]
                await state.stream.feed(chunk)
            if streaming_config is None:
                raise BadRequest("the stream ended before a streaming_config was sent")
            if state.stream is not None:
                await state.stream.finish()
            else:
                state.closed_without_audio = True
                state.ready.set()
        except BadRequest as exc:
            state.fail(StreamError("INVALID_ARGUMENT", str(exc)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-read, or a bug: end this call, never the server
            log.warning("stream input failed", extra={"error": repr(exc)})
            state.fail(StreamError("CANCELLED" if isinstance(exc, grpc.RpcError) else "INTERNAL", str(exc)))


class _StreamState:
    """Hands results (or the first error) from the reader and the recognition stream to the response generator."""

    def __init__(self) -> None:
        self.stream: RecognitionStream | None = None
        self.config: StreamConfig | None = None
        self.ready = asyncio.Event()
        self.error: StreamError | None = None
        self.closed_without_audio = False

    def fail(self, error: StreamError) -> None:
        self.error = error
        self.ready.set()
        if self.stream is not None:
            self.stream.results.put_nowait(error)

    async def next_item(self, reader: asyncio.Task[None]) -> StreamResult | StreamError | None:
        if self.stream is None:
            await self.ready.wait()
            if self.error is not None:
                return self.error
            if self.stream is None:
                return None
        return await self.stream.results.get()


class HealthServicer(health_pb2_grpc.HealthServicer):
    """grpc.health.v1.Health: SERVING once the model is loaded and while not shutting down."""

    def __init__(self, runtime: AsrRuntime) -> None:
        self.rt = runtime

    async def Check(  # noqa: N802 - gRPC method name
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in ("", SERVICE_NAME):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        status = (
            health_pb2.HealthCheckResponse.ServingStatus.SERVING
            if self.rt.ready
            else health_pb2.HealthCheckResponse.ServingStatus.NOT_SERVING
        )
        return health_pb2.HealthCheckResponse(status=status)
