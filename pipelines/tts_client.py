"""Pipecat TTS service for the speech.tts server (OpenAI-style streaming `POST /v1/audio/speech`).

It asks the server for raw PCM16 at the pipeline's output rate, so nothing resamples on the way out, and emits
TTSAudioRawFrames as the bytes arrive. No dependency on Pipecat's deprecated XTTSService. An interruption cancels
the request, which closes the HTTP stream, and the server stops synthesizing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from loguru import logger
from pipecat.frames.frames import CancelFrame, EndFrame, ErrorFrame, Frame, StartFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.tracing.service_decorators import traced_tts

from core.agent_config import TTSConfig

# Rates the server produces directly; for any other pipeline rate we ask for 24 kHz and Pipecat resamples.
SERVER_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


@dataclass
class VoiceAgentTTSSettings(TTSSettings):
    """`model` picks the server's engine (piper | xtts); `voice` a voice id from GET /v1/voices."""


class VoiceAgentTTSService(TTSService):
    Settings = VoiceAgentTTSSettings
    _settings: VoiceAgentTTSSettings

    def __init__(
        self,
        *,
        base_url: str,
        voice: str = "en_US-joe-medium",
        engine: str | None = None,
        speed: float = 1.0,
        auth_headers: Callable[[], dict[str, str]] | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        settings: VoiceAgentTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            base_url: the TTS server, e.g. http://127.0.0.1:8200.
            voice: voice id; engine: "piper" or "xtts" (None: the server's default engine for that voice).
            auth_headers: the platform server's credentials, fresh per request (a service token for the call's
                organisation, core/service_auth.py).
            http_client: a shared client (one per process is best); None creates one owned by this service.
            **kwargs: passed to Pipecat's TTSService (sample_rate, text_aggregation_mode, ...).
        """
        default_settings = VoiceAgentTTSSettings(model=engine, voice=voice, language=None)
        if settings is not None:
            default_settings.apply_update(settings)
        super().__init__(push_start_frame=True, push_stop_frames=True, settings=default_settings, **kwargs)
        self._base_url = base_url.rstrip("/")
        self._speed = speed
        self._auth_headers = auth_headers
        self._timeout = httpx.Timeout(timeout_s, read=max(timeout_s, 30.0))
        self._client = http_client
        self._owns_client = http_client is None

    def can_generate_metrics(self) -> bool:
        return True

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._close_client()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._close_client()

    async def _close_client(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _request_rate(self) -> int:
        return self.sample_rate if self.sample_rate in SERVER_RATES else 24000

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "input": text,
            "voice": self._settings.voice,
            "response_format": "pcm",
            "sample_rate": self._request_rate(),
            "speed": self._speed,
        }
        engine = getattr(self._settings, "model", None)
        language = getattr(self._settings, "language", None)
        if isinstance(engine, str) and engine:
            body["model"] = engine
        if isinstance(language, str) and language:
            body["language"] = language
        return body

    def platform_headers(self) -> dict[str, str]:
        return self._auth_headers() if self._auth_headers is not None else {}

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        url = f"{self._base_url}/v1/audio/speech"
        try:
            async with self._client.stream(
                "POST", url, json=self.request_body(text), headers=self.platform_headers(), timeout=self._timeout
            ) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    yield ErrorFrame(error=f"{self}: TTS server answered {response.status_code}: {detail}")
                    return
                await self.start_tts_usage_metrics(text)
                async for frame in self._stream_audio_frames_from_iterator(
                    response.aiter_bytes(), in_sample_rate=self._request_rate(), context_id=context_id
                ):
                    await self.stop_ttfb_metrics()
                    yield frame
        except httpx.HTTPError as exc:
            logger.warning(f"{self}: TTS request failed: {exc!r}")
            yield ErrorFrame(error=f"{self}: TTS request failed: {exc!r}")
        finally:
            await self.stop_ttfb_metrics()


def create_tts_service(
    config: TTSConfig | None = None,
    *,
    default_url: str,
    sample_rate: int | None = None,
    http_client: httpx.AsyncClient | None = None,
    auth_headers: Callable[[], dict[str, str]] | None = None,
    service_class: type[VoiceAgentTTSService] | None = None,
    **kwargs: Any,
) -> VoiceAgentTTSService:
    """The TTS service for a call from the agent's TTS config (endpoint, engine, voice, speed).

    Args:
        default_url: the platform's TTS server (TTS_URL), used unless the agent's endpoint overrides it.
        sample_rate: the pipeline's output rate; the server produces it directly.
        http_client: a process-wide httpx client to share connections across calls.
        service_class: a subclass (the fallback chain, tts_chain.py); its extra arguments go in **kwargs.
    """
    config = config or TTSConfig()
    return (service_class or VoiceAgentTTSService)(
        base_url=config.endpoint.base_url or default_url,
        voice=config.voice,
        engine=config.engine,
        speed=config.speed,
        auth_headers=auth_headers,
        http_client=http_client,
        timeout_s=config.endpoint.timeout_s,
        sample_rate=sample_rate,
        **kwargs,
    )
