"""A flow agent on a real call: the booking flow (tests/booking_flow.py) run by pipecat.flows' FlowManager in the
call pipeline, with the embedded LLM constrained per node by tool_choice, caller audio synthesised by the TTS
server, and the path and collected variables read back from the backend's call detail."""

from __future__ import annotations

import httpx
from booking_flow import BOOKING_FLOW
from stack_helpers import synthesize
from voicetest_helpers import Simulate, ended_with_recording, wait_for_call

from voice_server.answering import inbound_call_id
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript


async def test_a_booking_flow_walks_its_nodes_and_collects_the_variables(
        simulate: Simulate, twilio_line_with, http: httpx.AsyncClient, tts_url: str) -> None:  # type: ignore[no-untyped-def]
    line: SimLine = await twilio_line_with(
        system_prompt="You take table bookings for Luigi's restaurant.",
        greeting="Hello, this is Luigi's. How can I help?",
        llm={"max_tokens": 60, "temperature": 0.0},
        silence={"reminder_after_s": 30.0, "max_reminders": 0},
        flow=BOOKING_FLOW)
    turns = [CallerTurn(audio=synthesize(tts_url, text), gap_s=0.6, label=label) for label, text in [
        ("book", "I would like to book a table, please."),
        ("details", "On Friday. My name is Peter."),
        ("yes", "Yes, that is right."),
    ]]
    report = await simulate(line, CallScript(turns=turns, hangup_after_s=None, max_duration_s=90))

    call_id = inbound_call_id("twilio", report.carrier_call_id)
    call = await wait_for_call(http, line, call_id, ended_with_recording)
    path = [step["node"] for step in call["flow_path"]]
    assert path == ["greet", "collect", "confirm", "end"], (path, call["turns"])
    assert [step["via"] for step in call["flow_path"]] == ["start", "start_booking", "save_collect", "save_confirm"]
    variables = call["flow_variables"]
    heard = [t["text"] for t in call["turns"] if t["speaker"] == "caller"]
    assert variables["date"] == "Friday" and "peter" in variables["name"].lower(), (variables, heard)
    assert variables["confirmed"] == "true", variables
    assert call["end_reason"] == "agent_hangup", call["end_reason"]
    agent_turns = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert agent_turns[-1] == "You are booked. Goodbye!", agent_turns
