"""Finding 10 (the services' side): production secrets must be real keys, and /metrics is not for the internet."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

import httpx
import pytest
from backend_testkit import backend_settings
from fastapi import FastAPI
from security_testkit import asgi_client, known_settings

from backend.config import BackendSettings
from backend.main import create_app
from voice_server.config import VoiceServerSettings
from voice_server.main import create_app as create_voice_app

WEAK = "correct-horse-battery"  # 21 characters: accepted by the old 16-character rule, far from 32 random bytes


async def test_the_backend_refuses_weak_secrets_in_production(data_services: dict[str, str]) -> None:
    app = create_app(backend_settings(mongodb_db=f"weak_{uuid.uuid4().hex[:8]}", public_base_url="https://api.example.com",
                                      jwt_secret=WEAK))
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        async with app.router.lifespan_context(app):
            pass


async def test_the_voice_server_refuses_weak_secrets_in_production(tmp_path: Path, data_services: dict[str, str]
                                                                   ) -> None:
    settings = VoiceServerSettings(**known_settings(
        VoiceServerSettings, voice_public_base_url="https://voice.example.com", voice_spool_dir=tmp_path,
        service_token_secret=os.environ["SERVICE_TOKEN_SECRET"], call_token_secret="a" * 40,
        backend_url="http://127.0.0.1:9", smart_turn_enabled=False, llm_warmup=False))
    app = create_voice_app(settings)
    with pytest.raises(RuntimeError, match="CALL_TOKEN_SECRET"):
        async with app.router.lifespan_context(app):
            pass


async def test_backend_metrics_need_a_token_from_anywhere_but_this_host(strict_backend: FastAPI) -> None:
    async with asgi_client(strict_backend, "203.0.113.5") as outsider:
        assert (await outsider.get("/metrics")).status_code == 401
    async with asgi_client(strict_backend, "127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 200
        # A proxy on this host forwarding an outsider is not "this host".
        assert (await local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})).status_code == 401


async def test_voice_server_metrics_need_a_token_from_anywhere_but_this_host(tmp_path: Path,
                                                                             data_services: dict[str, str]) -> None:
    app = create_voice_app(VoiceServerSettings(
        voice_spool_dir=tmp_path, metrics_token="", backend_url="http://127.0.0.1:9", smart_turn_enabled=False,
        service_token_secret=os.environ["SERVICE_TOKEN_SECRET"], call_token_secret=os.environ["CALL_TOKEN_SECRET"]))
    async with app.router.lifespan_context(app):
        for client, expected in ((("203.0.113.5", 40000), 401), (("127.0.0.1", 40000), 200)):
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://voice") as http:
                assert (await http.get("/metrics")).status_code == expected, client


def test_production_secret_rule() -> None:
    strong = BackendSettings(jwt_secret="0123456789abcdef" * 4, encryption_key=uuid.uuid4().hex + uuid.uuid4().hex,
                             # 64 random hex digits: a repeated 32-digit uuid has under 12 distinct characters in
                             # ~1.6 % of draws, which the rule rightly calls weak (a flaky test before).
                             service_token_secret=secrets.token_hex(32), call_token_secret=secrets.token_hex(32),
                             public_base_url="https://api.example.com")
    assert strong.missing_secrets() == []
    assert strong.model_copy(update={"jwt_secret": strong.jwt_secret.__class__("ab" * 32)}).missing_secrets() == [
        "JWT_SECRET"]
