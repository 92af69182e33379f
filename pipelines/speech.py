"""STT and TTS for a call, from the agent config: a thin adapter over the speech services' own factories
(pipelines/stt.py and pipelines/tts_client.py, owned by the speech area), plus one-shot synthesis for greetings
prepared before the media socket opens.

The platform's own ASR and TTS servers get a fresh service token per stream or request, for the call's
organisation (its cloned voices); an agent's own endpoints never do (they get only its own key, in the chains)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from core.agent_config import STTConfig, TTSConfig
from core.service_auth import mint_service_token, service_headers
from pipelines.processors import FastFirstChunkAggregator
from pipelines.streaming import StreamingAudio
from pipelines.stt_models import RivaModelCatalog

if TYPE_CHECKING:
    from pipelines.stt_chain import STTInterims


class SpeechFactory:
    def __init__(self, *, riva_server: str, tts_url: str, http: httpx.AsyncClient,
                 stt_final_wait_s: float = 0.6, stt_endpoint_silence_ms: int = 300,
                 stt_finalize_on_vad_stop: bool = False, stt_interims: STTInterims = "while_agent_speaks",
                 fast_first_chunk: bool = True, first_chunk_max_words: int = 3, stt_model: str = "",
                 service_secret: str = "") -> None:
        self.riva_server = riva_server
        self._service_secret = service_secret  # SERVICE_TOKEN_SECRET: the speech servers' credential
        # Shared by every call of the process: which model each ASR server serves (STT_MODEL pins the platform's).
        self.stt_models = RivaModelCatalog({riva_server: stt_model})
        self.tts_url = tts_url.rstrip("/")
        self._http = http
        self._stt_final_wait_s = stt_final_wait_s
        self._stt_endpoint_silence_ms = stt_endpoint_silence_ms
        self._stt_finalize_on_vad_stop = stt_finalize_on_vad_stop
        self._stt_interims = stt_interims
        self.fast_first_chunk = fast_first_chunk
        self.first_chunk_max_words = first_chunk_max_words

    def platform_token(self, org: str | None = None) -> str | None:
        """A fresh service token for the platform's speech servers (None without SERVICE_TOKEN_SECRET)."""
        return mint_service_token(self._service_secret, "voice-server", org=org) if self._service_secret else None

    def platform_headers(self, org: str | None = None) -> Callable[[], dict[str, str]]:
        """Headers for each request to the platform's TTS server, for `org` (the call's organisation)."""
        secret = self._service_secret
        return lambda: service_headers(secret, "voice-server", org) if secret else {}

    def stt(self, config: STTConfig, sample_rate: int, org: str | None = None, **service: Any) -> STTService:
        """`service`: `service_class` and its extra arguments (the fallback chain, pipelines/stt_chain.py)."""
        from pipelines.stt import create_stt_service

        if "service_class" in service:  # the fallback chain (the stock service has no such option)
            service.setdefault("finalize_on_vad_stop", self._stt_finalize_on_vad_stop)
            service.setdefault("interims", self._stt_interims)
            service.setdefault("models", self.stt_models)
            service.setdefault("platform_token", lambda: self.platform_token(org))
        elif (config.endpoint.base_url or self.riva_server) == self.riva_server:
            service.setdefault("api_key", self.platform_token(org))  # the stock client: one token per call
        return create_stt_service(config, default_server=self.riva_server, sample_rate=sample_rate,
                                  endpoint_silence_ms=self._stt_endpoint_silence_ms,
                                  ttfs_p99_latency=self._stt_final_wait_s, **service)

    def tts(self, config: TTSConfig, sample_rate: int, org: str | None = None, **service_args: Any) -> TTSService:
        """`service_args`: `service_class` and its extra arguments (the fallback chain, pipelines/tts_chain.py,
        which sends these credentials to the platform's endpoint only)."""
        from pipelines.tts_client import create_tts_service

        if "service_class" in service_args or self.is_platform(config):
            service_args.setdefault("auth_headers", self.platform_headers(org))
        service = create_tts_service(config, default_url=self.tts_url, sample_rate=sample_rate,
                                     http_client=self._http, **service_args)
        if self.fast_first_chunk:
            # Pipecat builds its sentence aggregator inside the service; swap in one that releases the first
            # clause of each reply early (pipecat-ai 1.14 attribute, version pinned in pyproject).
            old = service._text_aggregator
            service._text_aggregator = FastFirstChunkAggregator(aggregation_type=old.aggregation_type,
                                                                language=old.language,
                                                                max_words=self.first_chunk_max_words)
        return service

    def is_platform(self, config: TTSConfig) -> bool:
        """Whether the agent's primary TTS endpoint is the platform's own server."""
        return (config.endpoint.base_url or self.tts_url).rstrip("/") == self.tts_url

    def synthesize_streaming(self, config: TTSConfig, text: str, sample_rate: int,
                             org: str | None = None) -> tuple[StreamingAudio, asyncio.Task[None]]:
        """Starts synthesis on the platform's TTS server now; the audio can be consumed while it is still being
        produced. Only ever the platform's server, with this process's unguarded client: an agent's own endpoint
        is reached in the call, through the egress guard and with its own key (pipelines/tts_chain.py), so the
        caller of this checks `is_platform` first."""
        audio = StreamingAudio(sample_rate)
        body = {"input": text, "model": config.engine, "voice": config.voice, "response_format": "pcm",
                "speed": config.speed, "sample_rate": sample_rate}

        async def run() -> None:
            carry = b""
            try:
                async with self._http.stream("POST", f"{self.tts_url}/v1/audio/speech", json=body,
                                             headers=self.platform_headers(org)(),
                                             timeout=config.endpoint.timeout_s) as resp:
                    if resp.status_code != 200:
                        detail = (await resp.aread()).decode(errors="replace")[:200]
                        audio.finish(f"TTS answered {resp.status_code}: {detail}")
                        return
                    async for chunk in resp.aiter_bytes():
                        data = carry + chunk
                        cut = len(data) - len(data) % 2
                        audio.append(data[:cut])
                        carry = data[cut:]
                audio.finish()
            except httpx.HTTPError as exc:
                audio.finish(f"TTS unreachable: {type(exc).__name__}: {exc}")
            except asyncio.CancelledError:
                audio.finish("cancelled")
                raise

        return audio, asyncio.create_task(run(), name="prepared-speech")
