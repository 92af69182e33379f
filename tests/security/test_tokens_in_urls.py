"""Finding 11: tokens that travel in URLs (invitation links, the browser test-call socket, signed campaign
callbacks, Vobiz's media path) never reach an access log, and the longest-lived of them is short.

The backend runs as uvicorn does in the deployments (access log on); the attacker is whoever reads its logs."""

from __future__ import annotations

import contextlib
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from backend_testkit import register
from voice_stack import start_voice
from websockets.asyncio.client import connect

from voicectl.procs import ManagedProcess, free_port, http_ok


async def test_tokens_in_urls_never_reach_the_access_log(data_services: dict[str, str], tmp_path: Path,
                                                          client: httpx.AsyncClient) -> None:
    port = free_port()
    env = {**data_services, "MONGODB_DB": f"logs_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "false",
           "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    proc = ManagedProcess("backend-access-log", [sys.executable, "-m", "uvicorn", "backend.main:app", "--host",
                                                 "127.0.0.1", "--port", str(port)],  # access log on, as deployed
                          tmp_path, ports=[port], env=env, ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
                          start_timeout=120.0)
    proc.start()
    secrets = [f"secret{uuid.uuid4().hex}" for _ in range(4)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await http.get(f"/accept-invitation?token={secrets[0]}")
            await http.get(f"/api/v1/auth/me?access_token={secrets[1]}")
            await http.post(f"/api/v1/campaign-callbacks/twilio/attempt-1/{secrets[2]}/status")
            await http.get(f"/v1/browser?call=1&token={secrets[3]}")
    finally:
        proc.stop()
    log = proc.log_file.read_text(errors="replace")
    assert "/api/v1/campaign-callbacks/twilio/attempt-1/" in log, log[-2000:]  # the access log is on
    assert [s for s in secrets if s in log] == [], log[-2000:]


async def test_media_and_browser_socket_tokens_never_reach_the_voice_servers_log(
        data_services: dict[str, str], tmp_path: Path) -> None:
    voice, voice_url = start_voice(tmp_path, "voice-access-log", "http://127.0.0.1:9", access_log=True,
                                   LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    secrets = [f"secret{uuid.uuid4().hex}" for _ in range(2)]
    ws_base = voice_url.replace("http://", "ws://")
    try:
        for url in (f"{ws_base}/ws/vobiz/{secrets[0]}", f"{ws_base}/v1/browser?token={secrets[1]}"):
            with contextlib.suppress(Exception):  # both are refused (forged tokens): only the log matters here
                async with connect(url, open_timeout=5) as ws:
                    await ws.recv()
    finally:
        voice.stop()
    log = voice.log_file.read_text(errors="replace")
    assert "/ws/vobiz/" in log, log[-2000:]  # the handshakes were logged
    assert [s for s in secrets if s in log] == [], log[-2000:]


async def test_invitation_links_live_at_most_three_days(client: httpx.AsyncClient) -> None:
    owner = await register(client, "short-links")
    invite = await client.post("/api/v1/org/invitations", json={"email": f"i-{uuid.uuid4().hex[:6]}@example.com"},
                               headers=owner.headers)
    assert invite.status_code == 201, invite.text
    listed = (await client.get("/api/v1/org/invitations", headers=owner.headers)).json()[0]
    left = datetime.fromisoformat(listed["expires_at"]) - datetime.now(UTC)
    assert left.total_seconds() <= 3 * 24 * 3600, left
