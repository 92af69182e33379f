"""A campaign call's carrier AMD verdict, relayed by the backend to the call's in-call voicemail detector.

Campaign calls point the carrier's AMD callback at the backend (it keeps the attempt's outcome); when the campaign
says "leave a message", the backend relays the verdict to the voice server holding the call
(`POST /internal/v1/calls/{id}/machine-detection`, service token), and the agent leaves the campaign's message in its
own voice instead of the carrier's TTS. Here the test plays the backend's part on a real outbound call through the
fake carrier; tests/campaigns covers the backend's side (relay when the call detects in the call, carrier redirect
when it does not)."""

from __future__ import annotations

import asyncio
import os

import httpx
from stack_helpers import synthesize
from voicetest_helpers import (
    VoiceServer,
    dial_twilio_outbound,
    ended_with_recording,
    until_completed,
    wait_for_call,
)

from core.service_auth import mint_service_token
from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

AGENT_MESSAGE = "Hi, this is Test Clinic. Please call us back. Goodbye!"
CAMPAIGN_MESSAGE = "Hello, this is Acme about your renewal. Please call us back at five five five. Goodbye!"


def _relay_url(voice_server: VoiceServer, call_id: str) -> str:
    return f"{voice_server.url}/internal/v1/calls/{call_id}/machine-detection"


def _backend() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], 'backend')}"}


async def test_a_relayed_machine_verdict_leaves_the_campaigns_message_in_the_agents_voice(
        voice_server: VoiceServer, twilio_line_with, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str) -> None:
    """No cue and no beep in the greeting's words: alone they would pass for a person. The relayed verdict decides
    voicemail, and the campaign's message (not the agent's own) is said after the quiet."""
    line: SimLine = await twilio_line_with(voicemail={"detect_in_call": True, "message": AGENT_MESSAGE},
                                           silence={"reminder_after_s": 30.0, "max_reminders": 0})
    answer = synthesize(tts_url, "This is Sam Miller from Portland in Oregon speaking to you on this fine and sunny day.")
    call_id, fake_call = await dial_twilio_outbound(http, line, fake_carrier, voice_server, "+14155559811",
                                                    ScriptedCallee(script=CallScript(
                                                        turns=[CallerTurn(audio=answer, at_s=0.6, label="answer")],
                                                        hangup_after_s=None, max_duration_s=40)))
    await asyncio.sleep(2.0)  # what the carrier's AMD takes; the greeting is still playing
    for _ in range(40):  # 404 until the call's media stream is up (a loaded machine may take longer than 2 s)
        resp = await http.post(_relay_url(voice_server, call_id), headers=_backend(), json={
            "answered_by": "machine_start", "carrier_call_id": fake_call.sid, "message": CAMPAIGN_MESSAGE})
        if resp.status_code != 404:
            break
        await asyncio.sleep(0.25)
    assert resp.status_code == 204, resp.text
    await until_completed(fake_call, 50.0)
    call = await wait_for_call(http, line, call_id, ended_with_recording)
    assert call["end_reason"] == "voicemail", (call["end_reason"], call["turns"])
    assert "carrier machine_start" in (call.get("end_detail") or ""), call.get("end_detail")
    agent = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert agent == [CAMPAIGN_MESSAGE], agent


async def test_the_relay_refuses_bad_input_and_strangers(voice_server: VoiceServer, http: httpx.AsyncClient) -> None:
    body = {"answered_by": "machine_start"}
    assert (await http.post(_relay_url(voice_server, "no-such-call"), json=body)).status_code == 401
    bad = await http.post(_relay_url(voice_server, "no-such-call"), headers=_backend(),
                          json={"answered_by": "Machine; DROP"})
    assert bad.status_code == 422, bad.text
    # Not live here (or no in-call detection): 404, and the backend acts on the verdict itself.
    gone = await http.post(_relay_url(voice_server, "no-such-call"), headers=_backend(), json=body)
    assert gone.status_code == 404, gone.text
