"""Finding 10 (speech servers): anyone on the network used to be able to clone or delete the TTS server's voices.
Voice management now needs the platform's service token; synthesis and listing stay open to the internal network."""

from __future__ import annotations

import os

import httpx

from core.service_auth import mint_service_token


async def test_voices_cannot_be_deleted_or_cloned_without_a_service_token(tts_url: str) -> None:
    async with httpx.AsyncClient(base_url=tts_url, timeout=30) as anyone:
        deleted = await anyone.delete("/v1/voices/someone-elses-clone")
        cloned = await anyone.post("/v1/voices", files={"file": ("me.wav", b"RIFF" + b"\0" * 100)},
                                   data={"name": "me"})
        forged = await anyone.delete("/v1/voices/someone-elses-clone",
                                     headers={"Authorization": f"Bearer {mint_service_token('a-guessed-secret', 'x')}"})
        listed = await anyone.get("/v1/voices")
    assert deleted.status_code == 401, deleted.text
    assert cloned.status_code == 401, cloned.text
    assert forged.status_code == 401, forged.text
    assert listed.status_code == 200


async def test_the_platform_still_manages_voices(tts_url: str) -> None:
    token = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "backend")
    async with httpx.AsyncClient(base_url=tts_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as svc:
        missing = await svc.delete("/v1/voices/nobody")
    assert missing.status_code == 404, missing.text
