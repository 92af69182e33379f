"""STT and TTS for a call, from the agent config: a thin adapter over the speech services' own factories
(pipelines/stt.py and pipelines/tts_client.py, owned by the speech area), plus one-shot synthesis for greetings
prepared before the media socket opens."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from core.agent_config import STTConfig, TTSConfig
from pipelines.processors import FastFirstChunkAggregator
from pipelines.streaming import StreamingAudio
from pipelines.stt_models import RivaModelCatalog

if TYPE_CHECKING:
    from pipelines.stt_chain import STTInterims


class SpeechError(Exception):
    pass


class SpeechFactory:
    def __init__(self, *, riva_server: str, tts_url: str, http: httpx.AsyncClient,
                 stt_final_wait_s: float = 0.6, stt_endpoint_silence_ms: int = 300,
                 stt_finalize_on_vad_stop: bool = False, stt_interims: STTInterims = "while_agent_speaks",
                 fast_first_chunk: bool = True, first_chunk_max_words: int = 6, stt_model: str = "") -> None:
        self.riva_server = riva_server
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

    def stt(self, config: STTConfig, sample_rate: int, **service: Any) -> STTService:
        """`service`: `service_class` and its extra arguments (the fallback chain, pipelines/stt_chain.py)."""
        from pipelines.stt import create_stt_service

        if "service_class" in service:  # the fallback chain (the stock service has no such option)
            service.setdefault("finalize_on_vad_stop", self._stt_finalize_on_vad_stop)
            service.setdefault("interims", self._stt_interims)
            service.setdefault("models", self.stt_models)
        return create_stt_service(config, default_server=self.riva_server, sample_rate=sample_rate,
                                  endpoint_silence_ms=self._stt_endpoint_silence_ms,
                                  ttfs_p99_latency=self._stt_final_wait_s, **service)

    def tts(self, config: TTSConfig, sample_rate: int, **service_args: Any) -> TTSService:
        """`service_args`: `service_class` and its extra arguments (the fallback chain, pipelines/tts_chain.py)."""
        from pipelines.tts_client import create_tts_service

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

    def _tts_base(self, config: TTSConfig) -> str:
        return (config.endpoint.base_url or self.tts_url).rstrip("/")

    def synthesize_streaming(self, config: TTSConfig, text: str, sample_rate: int) -> tuple[StreamingAudio,
                                                                                            asyncio.Task[None]]:
        """Starts synthesis now; the audio can be consumed while it is still being produced."""
        audio = StreamingAudio(sample_rate)
        body = {"input": text, "model": config.engine, "voice": config.voice, "response_format": "pcm",
                "speed": config.speed, "sample_rate": sample_rate}

        async def run() -> None:
            carry = b""
            try:
                async with self._http.stream("POST", f"{self._tts_base(config)}/v1/audio/speech", json=body,
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

    async def synthesize(self, config: TTSConfig, text: str, sample_rate: int) -> bytes:
        """The whole utterance as raw 16-bit mono PCM at `sample_rate`."""
        body = {"input": text, "model": config.engine, "voice": config.voice, "response_format": "pcm",
                "speed": config.speed, "sample_rate": sample_rate}
        try:
            resp = await self._http.post(f"{self._tts_base(config)}/v1/audio/speech", json=body,
                                         timeout=config.endpoint.timeout_s)
        except httpx.HTTPError as exc:
            raise SpeechError(f"TTS unreachable: {type(exc).__name__}: {exc}") from exc
        if not resp.is_success:
            raise SpeechError(f"TTS answered {resp.status_code}: {resp.text[:200]}")
        return resp.content
