"""The TTS HTTP API: OpenAI's `POST /v1/audio/speech` (streaming pcm/wav at a chosen rate) plus voice management.

Every route but /health and /metrics needs the platform's service token (speech/common/service_guard.py). A cloned
voice belongs to the organisation named in the token that cloned it: only tokens for that organisation list it,
speak with it or delete it. Errors use OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import struct
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from core.service_auth import ServiceCaller
from speech.common.audio import AudioFormatError, parse_wav_header, sniff_non_audio
from speech.common.service_guard import ServiceTokenGuard, caller_of
from speech.tts import metrics
from speech.tts.config import TtsSettings
from speech.tts.engines import EngineUnavailable, TtsEngine, VoiceInfo, load_engine
from speech.tts.service import OUTPUT_RATES, RequestError, ServerBusy, SpeechJob, SpeechStats, Synthesizer

log = logging.getLogger("speech.tts.app")

# OpenAI model names mean "this server's default engine"; an engine name picks that engine.
_OPENAI_MODELS = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-tts"}
_VOICE_ID = re.compile(r"[^a-z0-9_-]+")


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str = Field(description="Text to speak.")
    model: str | None = Field(default=None, description="piper | xtts; OpenAI model names pick the default engine.")
    voice: str | None = Field(default=None, description="A voice id from GET /v1/voices; empty: the default voice.")
    response_format: str = Field(default="pcm", description="pcm (raw s16le mono) or wav (streamed WAV).")
    speed: float = Field(default=1.0, description="0.5 to 2.0")
    sample_rate: int = Field(default=24000, description="Output rate: 8000, 16000, 22050, 24000, 44100 or 48000.")
    language: str | None = Field(default=None, description="xtts only: language code, e.g. en, es.")


class VoiceOut(BaseModel):
    id: str
    name: str
    engine: str
    language: str
    sample_rate: int
    cloned: bool

    @classmethod
    def of(cls, v: VoiceInfo) -> VoiceOut:
        return cls(
            id=v.id, name=v.name, engine=v.engine, language=v.language, sample_rate=v.native_sample_rate, cloned=v.cloned
        )


class VoiceList(BaseModel):
    object: str = "list"
    data: list[VoiceOut]


def get_synth(request: Request) -> Synthesizer:
    synth: Synthesizer = request.app.state.synth
    return synth


SynthDep = Annotated[Synthesizer, Depends(get_synth)]


def service_caller(request: Request) -> ServiceCaller:
    return caller_of(request.state)


CallerDep = Annotated[ServiceCaller, Depends(service_caller)]


def clone_owner(caller: CallerDep) -> str:
    """A clone belongs to one organisation, named by the calling service (the backend decides it, never a tenant)."""
    if not caller.org:
        raise RequestError(403, "cloning a voice needs a service token for an organisation")
    return caller.org


def _error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": status}}, status_code=status
    )


def wav_stream_header(sample_rate: int) -> bytes:
    """A WAV header for a stream of unknown length (sizes set to the maximum, as streaming encoders do)."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data" + struct.pack("<I", 0xFFFFFFFF - 36)
    )


def create_app(settings: TtsSettings | None = None) -> FastAPI:
    settings = settings or TtsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engines: dict[str, TtsEngine] = {}
        for name in settings.tts_engines:
            t0 = time.perf_counter()
            try:
                engines[name] = await asyncio.to_thread(load_engine, name, settings)
            except EngineUnavailable as exc:
                log.error("TTS engine cannot start", extra={"engine": name, "reason": str(exc)})
                raise
            log.info("engine ready", extra={"engine": name, "load_s": round(time.perf_counter() - t0, 2)})
        synth = Synthesizer(settings, engines)
        app.state.synth = synth
        log.info("TTS server ready", extra={"engines": list(engines), "voices": len(synth.voices(None))})
        try:
            yield
        finally:
            synth.close()

    app = FastAPI(title="voiceagent TTS", version="1.0", lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(ServiceTokenGuard, secret=settings.service_token_secret.get_secret_value(),
                       server="TTS server")

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, str(exc), exc.param)

    @app.exception_handler(ServerBusy)
    async def _busy(_: Request, exc: ServerBusy) -> JSONResponse:
        response = _error(503, str(exc), kind="server_busy")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return _error(400, f"invalid request: {problems}")

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        metrics.REQUESTS.labels(getattr(route, "path", "other"), str(response.status_code)).inc()
        return response

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        synth: Synthesizer | None = getattr(request.app.state, "synth", None)
        if synth is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "engines": list(synth.engines),
                "voices": len(synth.voices(None)),
                "active_streams": synth.active,
                "workers_busy": synth.pool.busy,
                "waiting": synth.pool.waiting,
            }
        )

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/voices", response_model=VoiceList)
    async def list_voices(synth: SynthDep, caller: CallerDep) -> VoiceList:
        return VoiceList(data=[VoiceOut.of(v) for v in synth.voices(caller.org)])

    @app.post("/v1/voices", response_model=VoiceOut, status_code=201)
    async def clone_voice(
        synth: SynthDep,
        owner: Annotated[str, Depends(clone_owner)],
        file: Annotated[UploadFile, File(description="Reference clip: WAV, 3 to 60 s of one speaker")],
        name: Annotated[str, Form(min_length=1, max_length=64)],
        language: Annotated[str, Form()] = "en",
        engine: Annotated[str | None, Form()] = None,
    ) -> VoiceOut:
        target = synth.cloning_engine(engine)
        data = await file.read(settings.tts_max_upload_bytes + 1)
        if len(data) > settings.tts_max_upload_bytes:
            raise RequestError(413, f"reference clip is larger than {settings.tts_max_upload_bytes} bytes", "file")
        _check_reference_clip(data)
        voice_id = owned_voice_id(owner, name)
        if any(v.id == voice_id for v in synth.voices(owner)):
            raise RequestError(409, f"a voice named {voice_id!r} already exists; delete it first", "name")
        final = await asyncio.to_thread(_store_clip, settings.voices_dir(), voice_id, data)
        try:
            info = await synth.add_voice(target, voice_id, name.strip(), final, language, owner)
        except BaseException:
            await asyncio.to_thread(final.unlink, missing_ok=True)
            raise
        return VoiceOut.of(info)

    @app.delete("/v1/voices/{voice_id}", status_code=204)
    async def delete_voice(voice_id: str, synth: SynthDep, caller: CallerDep) -> Response:
        synth.delete_voice(voice_id, caller.org)
        return Response(status_code=204)

    @app.post(
        "/v1/audio/speech",
        responses={200: {"content": {"audio/pcm": {}, "audio/wav": {}}, "description": "Streamed audio"}},
    )
    async def speech(body: SpeechRequest, synth: SynthDep, caller: CallerDep) -> StreamingResponse:
        stats = SpeechStats()
        job = _job_for(body, synth, settings, caller.org)
        synth.check_capacity()
        audio = synth.stream(job, stats)
        try:
            first = await anext(audio)  # errors before the first audio still get a proper status code
        except StopAsyncIteration:
            raise RequestError(400, "input produced no audio", "input") from None

        async def body_stream() -> AsyncIterator[bytes]:
            try:
                if body.response_format == "wav":
                    yield wav_stream_header(job.sample_rate)
                yield first
                async for chunk in audio:
                    yield chunk
            except Exception:
                log.exception("speech stream failed after the first audio")
            finally:
                with contextlib.suppress(Exception):
                    await audio.aclose()
                log.info(
                    "speech",
                    extra={
                        "engine": job.engine.name,
                        "voice": job.voice.id,
                        "chars": len(job.text),
                        "rate": job.sample_rate,
                        "ttfa_ms": round(1000 * (stats.first_audio_s or 0)),
                        "audio_s": round(stats.audio_s, 2),
                        "rtf": round(stats.synth_s / stats.audio_s, 3) if stats.audio_s else None,
                        "pieces": stats.pieces,
                    },
                )

        media = "audio/wav" if body.response_format == "wav" else "audio/pcm"
        headers = {
            "X-Sample-Rate": str(job.sample_rate),
            "X-Channels": "1",
            "X-Sample-Format": "s16le",
            "X-Voice": job.voice.id,
            "Cache-Control": "no-store",
        }
        return StreamingResponse(body_stream(), media_type=media, headers=headers)

    return app


def owned_voice_id(owner: str, name: str) -> str:
    """Clones live in their organisation's namespace: two organisations may both clone "front desk", and a 409
    never tells one that the other has a voice of that name."""
    slug = _VOICE_ID.sub("-", name.strip().lower()).strip("-") or f"voice-{uuid.uuid4().hex[:8]}"
    return f"{_VOICE_ID.sub('-', owner.lower()).strip('-')}--{slug}"


def _job_for(body: SpeechRequest, synth: Synthesizer, settings: TtsSettings, org: str | None) -> SpeechJob:
    text = body.input.strip()
    if not text:
        raise RequestError(400, "input is empty", "input")
    if len(text) > settings.tts_max_input_chars:
        raise RequestError(
            413, f"input is {len(text)} characters; the limit is {settings.tts_max_input_chars}", "input"
        )
    if body.response_format not in ("pcm", "wav"):
        raise RequestError(
            400, f"response_format {body.response_format!r} is not supported; use pcm or wav", "response_format"
        )
    if body.sample_rate not in OUTPUT_RATES:
        raise RequestError(
            400,
            f"sample_rate {body.sample_rate} is not supported; use one of {', '.join(map(str, OUTPUT_RATES))}",
            "sample_rate",
        )
    if not 0.5 <= body.speed <= 2.0:
        raise RequestError(400, f"speed {body.speed} is out of range; use 0.5 to 2.0", "speed")
    engine_name = None
    if body.model and body.model not in _OPENAI_MODELS:
        if body.model not in synth.engines:
            raise RequestError(
                400, f"model {body.model!r} is not served here; available: {', '.join(synth.engines)}", "model"
            )
        engine_name = body.model
    engine, voice = synth.find_voice(body.voice, engine_name, org)
    return SpeechJob(text, voice, engine, body.speed, body.sample_rate, body.language)


def _store_clip(voices_dir: Path, voice_id: str, data: bytes) -> Path:
    voices_dir.mkdir(parents=True, exist_ok=True)
    final = voices_dir / f"{voice_id}.wav"
    with tempfile.NamedTemporaryFile(dir=voices_dir, suffix=".part", delete=False) as tmp:
        tmp.write(data)
    Path(tmp.name).replace(final)  # atomic: a crash never leaves half a clip under the voice's name
    return final


def _check_reference_clip(data: bytes) -> None:
    what = sniff_non_audio(data)
    if what or len(data) < 44:
        raise RequestError(415, f"the upload is {what or 'too short to be audio'}; send a WAV file", "file")
    try:
        info = parse_wav_header(data)
    except AudioFormatError as exc:
        raise RequestError(415, f"the upload is not a usable WAV file: {exc}", "file") from exc
    width = 1 if info.encoding == "mulaw" else 2
    length = info.data_length if info.data_length is not None else len(data) - info.data_offset
    seconds = length / (width * info.channels * info.sample_rate)
    if not 3.0 <= seconds <= 60.0:
        raise RequestError(400, f"the reference clip is {seconds:.1f}s long; use 3 to 60 s of clear speech", "file")
