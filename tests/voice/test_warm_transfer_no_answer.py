"""A warm transfer whose human does not answer, on both carriers: the caller waits in the conference (Twilio
`<Dial><Conference>`, Vobiz `<Conference>` through its Transfer API, docs/transfers.md) and the human's leg ends
`no-answer`; the voice server's warm-status handler then releases the caller with an apology (Twilio: inline
TwiML; Vobiz: the Transfer API fetching the signed apology document) instead of leaving them on hold."""

from __future__ import annotations

import asyncio

import pytest
from stack_helpers import synthesize
from voicetest_helpers import Simulate

from voice_server.routes.carriers import NOBODY_AVAILABLE_MESSAGE
from voice_server.testing.fake_carrier import FakeCarrier, ScriptedCallee
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

HUMANS = {"twilio": "+14155550177", "vobiz": "+919876500177"}


@pytest.mark.parametrize("carrier", ["twilio", "vobiz"])
async def test_the_caller_hears_an_apology_when_the_human_does_not_answer(
        simulate: Simulate, twilio_line_with, make_vobiz_line, fake_carrier: FakeCarrier,  # type: ignore[no-untyped-def]
        tts_url: str, carrier: str) -> None:
    human_number = HUMANS[carrier]
    fake_carrier.callees[human_number] = ScriptedCallee(outcome="no-answer", ring_s=0.5)
    make_line = twilio_line_with if carrier == "twilio" else make_vobiz_line
    line: SimLine = await make_line(
        system_prompt="You route callers to the sales team.",
        llm={"max_tokens": 100, "temperature": 0.2, "tool_choice": "transfer_call"}, enable_end_call=False,
        transfer_targets=[{"name": "Sales", "phone_number": human_number, "mode": "warm"}],
        silence={"reminder_after_s": 60.0, "max_reminders": 0})
    script = CallScript(turns=[CallerTurn(audio=synthesize(tts_url, "I want to buy twenty seats."), gap_s=0.5)],
                        hangup_after_s=None, max_duration_s=40)
    report = await simulate(line, script)
    caller = next(c for c in fake_carrier.calls.values() if c.sid == report.carrier_call_id)
    assert caller.transferred_to and caller.transferred_to.startswith("conference:"), caller.redirect_twiml
    for _ in range(100):
        if caller.spoken_message:
            break
        await asyncio.sleep(0.1)
    assert caller.spoken_message == NOBODY_AVAILABLE_MESSAGE and caller.over, (caller.status, caller.redirect_twiml)
    human = next(c for c in fake_carrier.calls.values() if c.to_number == human_number)
    assert human.status == "no-answer" and human.bridged_with is None
