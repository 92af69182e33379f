"""/api/v1/voices: the TTS server's voices for the agent editor, and short samples of them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from backend.api.deps import AgentsRead, ServicesDep
from backend.api.responses import AUTHENTICATED
from backend.errors import ErrorResponse
from backend.models.voices import VoiceOut, VoiceSampleRequest

router = APIRouter(prefix="/voices", tags=["agents"], responses={
    **AUTHENTICATED, 503: {"model": ErrorResponse, "description": "The TTS server is not reachable"},
})


@router.get("")
async def list_voices(principal: AgentsRead, services: ServicesDep) -> list[VoiceOut]:
    """The TTS server's built-in voices and this organisation's own cloned voices, for an agent's `tts.voice`."""
    return await services.voices.list(principal.org_id)


@router.post("/sample", response_class=Response,
             responses={200: {"content": {"audio/wav": {}}, "description": "A WAV of the text in this voice"}})
async def voice_sample(body: VoiceSampleRequest, principal: AgentsRead, services: ServicesDep) -> Response:
    """Speaks a short text (at most VOICE_SAMPLE_MAX_CHARS characters) in a voice; a mono 16-bit WAV."""
    audio = await services.voices.sample(principal.org_id, body)
    return Response(audio, media_type="audio/wav", headers={"Cache-Control": "no-store"})
