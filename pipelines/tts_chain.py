"""The TTS degradation chain: primary endpoint/engine -> fallback endpoints/engines (e.g. xtts -> piper) ->
pre-recorded prompt clips -> give up (the agent cannot speak: transfer or end the call).

Per utterance, endpoints are tried in order (open breakers skipped) until one answers 200; once audio flows the
utterance stays on that endpoint. A connection error, timeout or 5xx counts against the endpoint's breaker; a 4xx
(e.g. an engine that server does not have) only moves on to the next one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import httpx
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSUpdateSettingsFrame
from pipecat.processors.frame_processor import FrameDirection

from core.agent_config import EndpointOptions, TTSConfig
from pipelines.degradation import DegradationPolicy, PromptClips
from pipelines.resilience import BreakerRegistry
from pipelines.tts_client import VoiceAgentTTSService, VoiceAgentTTSSettings


@dataclass(frozen=True)
class TTSEndpoint:
    base_url: str
    engine: str | None
    voice: str | None  # None: the server's default voice for the engine
    timeout_s: float
    platform: bool = True  # the platform's TTS_URL; False: the agent's own endpoint, reached through the egress guard
    org_key: str | None = field(default=None, repr=False)  # a custom endpoint's api_key_ref secret


class _EndpointFailed(Exception):
    def __init__(self, reason: str, *, counts: bool) -> None:
        super().__init__(reason)
        self.counts = counts  # against the breaker


@dataclass
class TTSVoiceFrame(TTSUpdateSettingsFrame):
    """The rest of the call speaks with another agent's TTS settings (a flow's hand-off, pipelines/flows.py): its
    voice and engine (Pipecat's settings delta) and its speed and endpoint chain. Queued like the speech it
    precedes, so what was already said keeps the old voice; not interruptible (a settings frame)."""

    endpoints: list[TTSEndpoint] = field(default_factory=list)
    speed: float = 1.0


def voice_frame(config: TTSConfig, default_url: str, secrets: dict[str, str] | None = None) -> TTSVoiceFrame:
    return TTSVoiceFrame(delta=VoiceAgentTTSSettings(voice=config.voice, model=config.engine),
                         endpoints=tts_endpoints(config, default_url, secrets), speed=config.speed)


class FallbackTTSService(VoiceAgentTTSService):
    def __init__(self, *, endpoints: list[TTSEndpoint], breakers: BreakerRegistry, policy: DegradationPolicy,
                 clips: PromptClips | None, canned_reply: str, tenant_http: httpx.AsyncClient | None = None,
                 **kwargs: Any) -> None:
        """`tenant_http`: the egress-guarded client for the agent's own endpoints (None: they are not reached)."""
        super().__init__(**kwargs)
        self.endpoints = endpoints
        self._tenant_http = tenant_http
        self._breakers = breakers
        self._policy = policy
        self._clips = clips
        self._canned_reply = canned_reply
        self.served_by: list[str] = []  # "<url> <engine>" or "prompt_clip" per utterance

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TTSVoiceFrame) and frame.endpoints:
            self.endpoints = frame.endpoints
            self._speed = frame.speed
        await super().process_frame(frame, direction)  # the voice and engine: Pipecat's settings update

    def _body(self, text: str, endpoint: TTSEndpoint) -> dict[str, Any]:
        body = self.request_body(text)
        body.pop("voice", None)
        body.pop("model", None)
        if endpoint.voice:
            body["voice"] = endpoint.voice
        if endpoint.engine:
            body["model"] = endpoint.engine
        return body

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        for index, endpoint in enumerate(self.endpoints):
            breaker = self._breakers.get(endpoint.base_url)
            label = f"{endpoint.base_url} {endpoint.engine or ''}".strip()
            if not breaker.allow():
                reason = f"circuit open ({breaker.snapshot().last_error})"
            else:
                try:
                    async for audio in self._stream(text, context_id, endpoint):
                        yield audio
                except _EndpointFailed as exc:
                    reason = str(exc)
                    if exc.counts:
                        breaker.record_failure(reason)
                    else:
                        breaker.record_success()  # it answered: alive, just not for this request
                else:
                    breaker.record_success()
                    self.served_by.append(label)
                    return
            if index + 1 < len(self.endpoints):
                nxt = self.endpoints[index + 1]
                self._policy.report("tts", label, f"{nxt.base_url} {nxt.engine or ''}".strip(), reason)
            else:
                self._policy.report("tts", label, "prompt_clip", reason)
        async for frame in self._play_clip(text, context_id):
            yield frame

    def _client_for(self, endpoint: TTSEndpoint) -> httpx.AsyncClient:
        if not endpoint.platform:
            if self._tenant_http is None:
                raise _EndpointFailed("custom TTS endpoints need the egress-guarded client", counts=False)
            return self._tenant_http
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def _stream(self, text: str, context_id: str, endpoint: TTSEndpoint) -> AsyncGenerator[Frame, None]:
        client = self._client_for(endpoint)
        timeout = httpx.Timeout(endpoint.timeout_s, read=max(endpoint.timeout_s, 30.0))
        started = False
        # The platform's credentials (if any) only go to the platform's endpoint.
        # An organisation's own key only to its own endpoint.
        headers = (self.platform_headers() if endpoint.platform
                   else {"Authorization": f"Bearer {endpoint.org_key}"} if endpoint.org_key else {})
        try:
            async with client.stream("POST", f"{endpoint.base_url}/v1/audio/speech",
                                     json=self._body(text, endpoint), headers=headers,
                                     timeout=timeout) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode(errors="replace")[:200]
                    raise _EndpointFailed(f"HTTP {response.status_code}: {detail}",
                                          counts=response.status_code >= 500)
                await self.start_tts_usage_metrics(text)
                async for frame in self._stream_audio_frames_from_iterator(
                    response.aiter_bytes(), in_sample_rate=self._request_rate(), context_id=context_id
                ):
                    started = True
                    await self.stop_ttfb_metrics()
                    yield frame
        except httpx.HTTPError as exc:
            if not started:
                raise _EndpointFailed(f"{type(exc).__name__}: {exc}"[:300], counts=True) from exc
            # Half an utterance cannot be redone elsewhere without repeating words: report and stop it here.
            logger.warning(f"{self}: TTS stream broke mid-utterance: {exc!r}")
            yield ErrorFrame(error=f"{self}: TTS stream broke: {exc!r}")

    async def _play_clip(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        pcm = self._clips.get(text, self.sample_rate) if self._clips is not None else None
        if pcm is None:
            # Nothing recorded for this text: the agent cannot speak. Hand the call over (the canned reply
            # usually has a clip, so the caller hears why).
            await self.stop_ttfb_metrics()
            self._policy.give_up("tts", f"no TTS endpoint and no recorded clip for {text[:60]!r}",
                                 self._canned_reply)
            yield None
            return
        self.served_by.append("prompt_clip")
        step = self.sample_rate * 2 // 10  # 100 ms
        await self.stop_ttfb_metrics()
        for i in range(0, len(pcm), step):
            yield TTSAudioRawFrame(pcm[i: i + step], self.sample_rate, 1, context_id=context_id)


def tts_endpoints(config: TTSConfig, default_url: str, secrets: dict[str, str] | None = None) -> list[TTSEndpoint]:
    default_url = default_url.rstrip("/")

    def endpoint(options: EndpointOptions, engine: str | None, voice: str | None) -> TTSEndpoint:
        url = (options.base_url or default_url).rstrip("/")
        key = (secrets or {}).get(options.api_key_ref) if options.api_key_ref else None
        return TTSEndpoint(url, engine, voice, options.timeout_s, platform=url == default_url, org_key=key)

    primary = config.endpoint
    chain = [endpoint(primary, primary.model or config.engine, config.voice)]
    for fb in config.fallbacks:
        engine = fb.model or config.engine
        chain.append(endpoint(fb, engine, config.voice if engine == chain[0].engine else None))
    return chain


def tts_chain_args(config: TTSConfig, *, default_url: str, breakers: BreakerRegistry, policy: DegradationPolicy,
                   clips: PromptClips | None, canned_reply: str,
                   tenant_http: httpx.AsyncClient | None = None,
                   secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """Arguments for `SpeechFactory.tts` / `create_tts_service` that build the chain instead of one endpoint."""
    return {"service_class": FallbackTTSService, "endpoints": tts_endpoints(config, default_url, secrets),
            "breakers": breakers, "policy": policy, "clips": clips, "canned_reply": canned_reply,
            "tenant_http": tenant_http}
