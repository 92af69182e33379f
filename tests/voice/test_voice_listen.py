"""Listen-in on a live call: the backend hands an admin's browser a ticket for the voice server that holds the call;
the socket streams the call's audio (caller and agent mixed) and closes when the call ends. Attacker checks: a
ticket opens neither the voice server's internal API nor another call, a service token is no ticket, a member
cannot get one (tests/backend/test_live.py)."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import numpy as np
import pytest
import websockets
from stack_helpers import synthesize
from voicetest_helpers import Simulate, VoiceServer

from core.service_auth import mint_service_token
from voice_server.testing.provision import SimLine, supervisor_ticket
from voice_server.testing.simulator import CallerTurn, CallScript

pytestmark = pytest.mark.timeout(240)

CALLER = "+14155550161"  # this test's own caller: other tests' calls may be live in the same organisation


async def _refused(url: str, first: str) -> int:
    async with websockets.connect(url) as ws:
        await ws.send(first)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code if closed.value.rcvd else 0


async def test_listen_in_streams_the_call(simulate: Simulate, twilio_line: SimLine, http: httpx.AsyncClient,
                                          voice_server: VoiceServer, tts_url: str) -> None:
    audio = synthesize(tts_url, "Hello, I would like to check my order status please.")
    script = CallScript(turns=[CallerTurn(audio=audio, gap_s=1.0, label="question")], hangup_after_s=2.0,
                        max_duration_s=60)
    call = asyncio.create_task(simulate(twilio_line, script, from_number=CALLER))
    call_id, ticket = await supervisor_ticket(http, twilio_line, CALLER, "listen")
    assert ticket["url"].startswith("ws://") and ticket["url"].endswith(f"/v1/listen/{call_id}")

    # The ticket is for listening to this one call only.
    internal = await http.get(f"{voice_server.url}/internal/v1/status",
                              headers={"Authorization": f"Bearer {ticket['ticket']}"})
    assert internal.status_code == 401
    other = ticket["url"].replace(call_id, "0" * 32)
    assert await _refused(other, ticket["ticket"]) == 4401
    service = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "backend")
    assert await _refused(ticket["url"], service) == 4401

    blocks: list[np.ndarray] = []
    async with websockets.connect(ticket["url"]) as ws:
        await ws.send(ticket["ticket"])
        header = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert header["sample_rate"] == 8000
        with pytest.raises(websockets.ConnectionClosedOK):
            while True:
                frame = await asyncio.wait_for(ws.recv(), 30)
                assert isinstance(frame, bytes)
                blocks.append(np.frombuffer(frame, dtype=np.int16))
    await call
    heard = np.concatenate(blocks).astype(float)
    assert heard.size / 8000 > 2.0, "less than two seconds of the call were heard"
    loud = [b for b in blocks if b.size and np.sqrt(np.mean(b.astype(float) ** 2)) > 300]
    assert loud, "only silence came through"

