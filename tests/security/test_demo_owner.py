"""Finding 1: a deployment must not come with demo@example.com / demo-password-123 as an owner."""

from __future__ import annotations

import uuid

import pytest
from security_testkit import asgi_client

from backend.config import BackendSettings
from backend.main import create_app
from voicectl.stack import StackPorts, _backend

DEMO = {"email": "demo@example.com", "password": "demo-password-123"}


async def test_a_default_backend_has_no_demo_owner(data_services: dict[str, str]) -> None:
    # Settings exactly as a deployment gets them: from the environment, nothing about the demo.
    settings = BackendSettings(mongodb_db=f"demo_{uuid.uuid4().hex[:8]}", argon2_time_cost=1, argon2_memory_kib=1024)
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app) as http:
        resp = await http.post("/api/v1/auth/login", json=DEMO)
    assert resp.status_code == 401, resp.text


async def test_the_backend_refuses_to_seed_the_demo_on_https(data_services: dict[str, str]) -> None:
    settings = BackendSettings(mongodb_db=f"demo_{uuid.uuid4().hex[:8]}", seed_demo=True,
                               public_base_url="https://voice.example.com", argon2_time_cost=1, argon2_memory_kib=1024)
    app = create_app(settings)
    with pytest.raises(RuntimeError, match="SEED_DEMO"):
        async with app.router.lifespan_context(app):
            pass


def test_only_voicectl_run_turns_the_demo_on(tmp_path: object) -> None:
    proc = _backend(tmp_path, StackPorts(), {})  # type: ignore[arg-type]
    assert proc.env.get("SEED_DEMO") == "true"
