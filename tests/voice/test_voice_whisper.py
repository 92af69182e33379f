"""A supervisor whispers to a live call through the backend: the backend finds the voice server that holds the
call from its heartbeat, the instruction joins the agent's context (the caller hears nothing of it) and the
transcript as a system turn; the call carries on."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from stack_helpers import synthesize
from voicetest_helpers import Simulate, wait_for_call

from voice_server.answering import inbound_call_id
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

pytestmark = pytest.mark.timeout(240)

CALLER = "+14155550162"  # this test's own caller: other tests' calls may be live in the same organisation


async def test_whisper_reaches_the_live_call(simulate: Simulate, twilio_line: SimLine, http: httpx.AsyncClient,
                                            tts_url: str) -> None:
    audio = synthesize(tts_url, "Hello, I have a question about my bill.")
    script = CallScript(turns=[CallerTurn(audio=audio, gap_s=4.0, label="question")], hangup_after_s=2.0,
                        max_duration_s=60)
    call = asyncio.create_task(simulate(twilio_line, script, from_number=CALLER))
    whispered: str | None = None
    for _ in range(200):
        live = [c for c in (await http.get(f"{twilio_line.backend_url}/api/v1/live/calls",
                                           headers=twilio_line.headers)).json() if c["from_number"] == CALLER]
        if live:
            resp = await http.post(f"{twilio_line.backend_url}/api/v1/live/calls/{live[0]['id']}/whisper",
                                   json={"text": "Offer a ten percent discount"}, headers=twilio_line.headers)
            if resp.status_code == 204:
                whispered = live[0]["id"]
                break
            assert resp.status_code == 409, resp.text  # not reachable yet (no heartbeat): try again
        await asyncio.sleep(0.1)
    report = await call
    assert whispered is not None, "the live call never showed up or never accepted the whisper"
    assert whispered == inbound_call_id("twilio", report.carrier_call_id)
    detail = await wait_for_call(http, twilio_line, whispered, lambda c: bool(c.get("end_reason")))
    system = [t["text"] for t in detail["turns"] if t["speaker"] == "system"]
    assert "[supervisor] Offer a ten percent discount" in system, detail["turns"]
    assert any(t["speaker"] == "agent" for t in detail["turns"])
