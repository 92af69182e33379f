"""Phone-menu navigation on a real outbound Vobiz call through the fake carrier's simulated menu ("for sales press
1, for billing press 2"), and the validation of the keys an agent may press (a clear 422-style error).

What the call test proves is the plumbing, not menu reading: the agent may press only 2 (`keys`), so the llama.cpp
grammar leaves the embedded SmolLM2-135M no other key. Pipecat's IVR navigator runs in the LLM's place, its key goes
out through the same send-digits path (Vobiz's REST DTMF API), the menu routes the call and its branch answers.
Menu reading itself needs a stronger LLM: offline, SmolLM2-135M calls every answer a menu ("Hello?" included),
presses 1 for "billing" whatever the menu, and answers the billing branch's "how can I help?" with `wait`, so the
hand-over to the conversation is not asserted here (docs/flows-and-phone.md). The navigator's parts are tested in
tests/voice/test_phone_menu_parts.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import ValidationError
from stack_helpers import synthesize
from voicetest_helpers import VoiceServer, ended_with_recording, outbound_call_record, wait_for_call

from core.agent_config import AgentConfig
from core.call_events import CarrierCredentials
from telephony.base import OutboundCallRequest
from telephony.vobiz import VobizRestClient
from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

MENU = "Thank you for calling Acme. For sales, press 1. For billing, press 2."
BRANCHES = {"1": "Sales, how can I help?", "2": "Billing, how can I help?"}


async def _call_the_menu(http: httpx.AsyncClient, line: SimLine, fake: FakeCarrier, voice_server: VoiceServer,
                         tts_url: str, callee: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    call_id = await outbound_call_record(http, line, callee, "vobiz")
    fake.callees[callee] = ScriptedCallee(
        menu={key: synthesize(tts_url, text) for key, text in BRANCHES.items()}, hangup_after_answer_s=60.0,
        script=CallScript(turns=[CallerTurn(audio=synthesize(tts_url, MENU), at_s=0.5, label="menu")],
                          hangup_after_s=None, max_duration_s=65))
    client = VobizRestClient(CarrierCredentials(carrier="vobiz", account_id=line.account.account_id,
                                                auth_token=line.account.auth_token, api_base_url=fake.base_url),
                             http)
    placed = await client.create_call(OutboundCallRequest(
        to_number=callee, from_number=line.number, answer_url=f"{voice_server.url}/vobiz/answer?call_id={call_id}",
        status_callback_url=f"{voice_server.url}/vobiz/hangup?call_id={call_id}"))
    fake_call = fake.calls[placed.carrier_call_id]
    for _ in range(700):  # the callee (the menu) hangs up after a minute
        if fake_call.over:
            break
        await asyncio.sleep(0.1)
    return await wait_for_call(http, line, call_id, ended_with_recording), fake_call.digits_sent


def _menu_agent(keys: str) -> dict:  # type: ignore[type-arg]
    return {"phone_menu": {"goal": "the billing department", "keys": keys},
            # The navigator's prompt is ~1,500 tokens: the embedded model on a loaded 2-core machine needs time.
            "llm": {"max_tokens": 16, "temperature": 0.0, "endpoint": {"timeout_s": 60.0}},
            "silence": {"reminder_after_s": 30.0, "max_reminders": 0}}


async def test_the_navigator_presses_an_allowed_key_and_the_menu_routes_the_call(
        voice_server: VoiceServer, make_vobiz_line, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str) -> None:
    line: SimLine = await make_vobiz_line(**_menu_agent("2"))
    call, digits = await _call_the_menu(http, line, fake_carrier, voice_server, tts_url, "+919876500301")
    assert digits and set(digits) == {"2"}, (digits, call["tools"], call["turns"], call["end_reason"])
    callee = [t["text"].lower() for t in call["turns"] if t["speaker"] != "agent"]
    assert any("billing" in text for text in callee), callee  # the menu routed the call: the branch answered



def test_keys_the_agent_may_press_are_validated() -> None:
    with pytest.raises(ValidationError, match="phone_menu.keys"):
        AgentConfig.model_validate({"phone_menu": {"goal": "billing", "keys": "12A"}})
