"""The TTS server's voices (speech/tts: GET /v1/voices, POST /v1/audio/speech), listed and sampled for the agent
editor. The browser never talks to speech servers; the backend proxies, with auth and a text cap. Each request
carries a service token for the caller's organisation, so the TTS server lists and speaks only that organisation's
cloned voices (and the built-in ones): the organisation comes from the signed-in principal, never from the body."""

from __future__ import annotations

import io
import logging
import wave

import httpx

from backend.errors import ApiError, ErrorDetail
from backend.models.voices import VoiceOut, VoiceSampleRequest
from core.service_auth import service_headers

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000  # what the TTS server makes by default; browsers play any rate


def tts_unavailable(detail: str) -> ApiError:
    return ApiError(503, "tts_unavailable", f"The speech (TTS) server is not available: {detail}"[:300])


class VoiceService:
    def __init__(self, tts_url: str, http: httpx.AsyncClient, max_chars: int, service_secret: str) -> None:
        self._base = tts_url.rstrip("/")
        self._http = http
        self._max_chars = max_chars
        self._secret = service_secret

    def _headers(self, org_id: str) -> dict[str, str]:
        return service_headers(self._secret, "backend", org_id) if self._secret else {}

    async def list(self, org_id: str) -> list[VoiceOut]:
        try:
            resp = await self._http.get(f"{self._base}/v1/voices", headers=self._headers(org_id), timeout=10.0)
        except httpx.HTTPError as exc:
            raise tts_unavailable(type(exc).__name__) from exc
        if not resp.is_success:
            raise tts_unavailable(f"it answered {resp.status_code}")
        voices = []
        for item in resp.json().get("data", []):
            if item.get("engine") not in ("piper", "xtts"):
                continue  # an engine the agent config cannot name
            voices.append(VoiceOut(id=item["id"], name=item.get("name") or item["id"], engine=item["engine"],
                                   language=item.get("language") or "", cloned=bool(item.get("cloned"))))
        return voices

    async def sample(self, org_id: str, body: VoiceSampleRequest) -> bytes:
        """A complete WAV (sizes filled in, unlike the TTS server's streamed header) of `text` in this voice."""
        text = body.text.strip()
        if not text or len(text) > self._max_chars:
            message = f"must be 1 to {self._max_chars} characters"
            raise ApiError(422, "validation_error", f"body.text: {message}",
                           [ErrorDetail(path="body.text", message=message)])
        pcm, rate = await self.speak(org_id, body, SAMPLE_RATE)
        return _wav(pcm, rate)

    async def speak(self, org_id: str, body: VoiceSampleRequest, sample_rate: int) -> tuple[bytes, int]:
        """Raw PCM16 of `body.text` in that voice, and its rate (the simulated caller of agent test runs)."""
        request = {"input": body.text, "model": body.engine, "voice": body.voice, "speed": body.speed,
                   "response_format": "pcm", "sample_rate": sample_rate}
        try:
            resp = await self._http.post(f"{self._base}/v1/audio/speech", json=request, headers=self._headers(org_id),
                                         timeout=60.0)
        except httpx.HTTPError as exc:
            raise tts_unavailable(type(exc).__name__) from exc
        if resp.status_code in (400, 404, 413):
            # The TTS server's own message says what is wrong (unknown voice, engine not served...).
            message = _tts_message(resp)
            param = {"voice": "body.voice", "model": "body.engine", "input": "body.text", "speed": "body.speed"}
            path = param.get(_tts_param(resp) or "", "body.voice")
            raise ApiError(422, "validation_error", f"{path}: {message}", [ErrorDetail(path=path, message=message)])
        if not resp.is_success:
            raise tts_unavailable(f"it answered {resp.status_code}")
        return resp.content, int(resp.headers.get("x-sample-rate") or sample_rate)


def _tts_message(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return f"the TTS server refused it ({resp.status_code})"


def _tts_param(resp: httpx.Response) -> str | None:
    try:
        param = resp.json()["error"].get("param")
        return str(param) if param else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _wav(pcm: bytes, sample_rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm[: len(pcm) // 2 * 2])
    return out.getvalue()
