"""A webhook tool called by the real LLM in a real (simulated) call, with its authentication header taken from an
organisation secret: the caller hears the filler phrase, the tool gets the model's arguments and the header, its
answer goes back to the model, and the call detail shows the tool call.

The embedded model (SmolLM2-135M) is made reliable the way a single-purpose agent would be: `llm.tool_choice`
names the tool, so llama.cpp constrains the first reply to that tool call with a JSON grammar; the reply that reads
the tool's result is free text (pipelines/llm_chain.py `after_tool_result`).

The tool's answer is spoken verbatim (`speak_result="verbatim"`). With `speak_result="llm"` the model words the
reply itself; SmolLM2-135M was observed NOT to restate the answer ("I'm sorry for the confusion, but as a medical AI
assistant..."), so no test asserts that mode's wording: it needs a stronger model. Its arguments are also weak
(e.g. {"day": "no, can't book an appointment for next Tuesday."}): the grammar guarantees their shape, not sense."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from stack_helpers import AsrServer, LocalServer
from voicetest_helpers import (
    Simulate,
    VoiceServer,
    call_story,
    ended_with_recording,
    heard_text,
    wait_for_call,
    words_heard,
)

from voice_server.answering import inbound_call_id
from voice_server.testing.simulator import CallerTurn, CallScript

pytestmark = pytest.mark.timeout(240)

FILLER = "One moment while I check the calendar."
CONFIRMATION = "Doctor Patel will see you on Tuesday at ten in the morning."
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


async def test_the_llm_calls_an_authenticated_webhook_tool_during_a_call(
        simulate: Simulate, twilio_line_with: Any, caller_audio: dict[str, bytes], http: httpx.AsyncClient,
        backend_url: str, owner: tuple[str, str], asr_server: AsrServer, voice_server: VoiceServer) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []
    app = FastAPI()

    @app.post("/book")
    async def book(request: Request) -> PlainTextResponse:
        received.append((await request.json(), request.headers.get("authorization")))
        return PlainTextResponse(CONFIRMATION)

    async with LocalServer(app) as crm:
        put = await http.put(f"{backend_url}/api/v1/org/secrets/clinic-crm",
                             json={"value": '{"Authorization": "Bearer crm-token-42"}'},
                             headers={"Authorization": f"Bearer {owner[0]}"})
        assert put.status_code in (200, 201), put.text
        line = await twilio_line_with(
            system_prompt="You book appointments for Test Clinic. After the tool answers, repeat its confirmation "
                          "to the caller word for word.",
            llm={"max_tokens": 40, "temperature": 0.0, "tool_choice": "book_appointment"},
            tools=[{"name": "book_appointment", "description": "Book an appointment on a day of the week.",
                    "url": f"{crm.url}/book", "filler_phrase": FILLER, "headers_secret_ref": "clinic-crm",
                    "speak_result": "verbatim",
                    # An enum, as a real booking tool would declare: the forced call's arguments follow the schema
                    # (llama.cpp grammar), and a free string let SmolLM2 write a runaway value on a misheard
                    # request ("Can I both an appointment...": "2018-03-24T15:39:57.623ZMXTR...") until max_tokens
                    # cut the JSON, which no tool can be called with.
                    "parameters": {"type": "object", "properties": {
                        "day": {"type": "string", "description": "The day of the week.", "enum": WEEKDAYS}},
                        "required": ["day"]}}],
            interruption={"protect_greeting": True},
            silence={"reminder_after_s": 4.0, "max_reminders": 0, "hangup_text": "Goodbye."})
        script = CallScript(turns=[CallerTurn(audio=caller_audio["book"], gap_s=0.5, label="book")],
                            hangup_after_s=None, max_duration_s=90)
        report = await simulate(line, script)

    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id), ended_with_recording)
    assert len(received) == 1, (received, call_story(call))
    arguments, authorization = received[0]
    assert authorization == "Bearer crm-token-42"  # from the organisation secret, never stored in the agent
    assert arguments.get("day") in WEEKDAYS, arguments

    heard = await heard_text(asr_server, report)
    assert words_heard(heard, FILLER) >= 4, heard

    tools = [t for t in call["tools"] if t["name"] == "book_appointment"]
    assert len(tools) == 1 and tools[0]["ok"] and tools[0]["status_code"] == 200, call["tools"]
    assert '"day"' in tools[0]["arguments"] and tools[0]["duration_ms"] > 0, tools[0]
    assert "crm-token-42" not in str(call)
    assert "crm-token-42" not in voice_server.proc.log_file.read_text(errors="replace")  # never logged
    # Streamed llama.cpp replies carry no usage: the prompt tokens are counted from what was sent (once 0 here).
    assert call["usage"]["llm_prompt_tokens"] > 100, call["usage"]
    agent_turns = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert CONFIRMATION in agent_turns, agent_turns  # the tool's answer, in the transcript
    assert words_heard(heard, CONFIRMATION) >= 6, heard  # and in the caller's ear, after the filler
    # The filler is heard before the confirmation: compare with the confirmation's first distinctive word that
    # Whisper tiny got ("Patel" has been heard as "but").
    confirmation_at = min((heard.find(w) for w in ("patel", "tuesday", "morning") if w in heard), default=-1)
    assert 0 <= heard.find("calendar") < confirmation_at, heard


async def test_the_pre_call_lookup_fills_variables_spoken_in_the_greeting(
        simulate: Simulate, twilio_line_with: Any, http: httpx.AsyncClient, asr_server: AsrServer) -> None:
    """The context webhook gets the caller's number before the greeting; a variable it returns is spoken in the
    greeting (heard by the ASR). A second line whose webhook is too slow still answers, without the value."""
    asked: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/context")
    async def context(request: Request) -> dict[str, Any]:
        asked.append(await request.json())
        return {"day": "Thursday", "visits": 3, "bad key": "x", "nested": {"no": 1}}

    @app.post("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(3)
        return {"day": "Thursday"}

    greeting = "Hello, this is Test Clinic about your visit on {{day}}. How can I help?"
    async with LocalServer(app) as crm:
        line = await twilio_line_with(greeting=greeting, context_webhook={"url": f"{crm.url}/context"},
                                      variables={"day": "the next working day"})
        report = await simulate(line, CallScript(turns=[], hangup_after_s=None, max_duration_s=60),
                                from_number="+14155550177")
        slow_line = await twilio_line_with(greeting=greeting,
                                           context_webhook={"url": f"{crm.url}/slow", "timeout_ms": 300})
        slow_report = await simulate(slow_line, CallScript(turns=[], hangup_after_s=None, max_duration_s=60))

    assert asked and asked[0]["from_number"] == "+14155550177" and asked[0]["direction"] == "inbound", asked
    heard = await heard_text(asr_server, report)
    assert "thursday" in heard, heard
    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id), ended_with_recording)
    first = next(t["text"] for t in call["turns"] if t["speaker"] == "agent")
    assert first == greeting.replace("{{day}}", "Thursday"), first
    lookup = next(t for t in call["tools"] if t["name"] == "context_webhook")
    assert lookup["ok"] and "2 variables" in lookup["detail"], lookup  # "bad key" and the object are dropped

    slow_call = await wait_for_call(http, slow_line, inbound_call_id("twilio", slow_report.carrier_call_id),
                                    ended_with_recording)
    slow_first = next(t["text"] for t in slow_call["turns"] if t["speaker"] == "agent")
    assert slow_first == greeting.replace("{{day}}", ""), slow_first  # went on without the lookup
    slow_lookup = next(t for t in slow_call["tools"] if t["name"] == "context_webhook")
    assert not slow_lookup["ok"] and "300 ms" in slow_lookup["detail"], slow_lookup


async def test_over_the_monthly_budget_inbound_calls_hear_the_message_and_end(
        simulate: Simulate, twilio_line_with: Any, http: httpx.AsyncClient, backend_url: str,
        owner: tuple[str, str]) -> None:
    """A budget of 0 is reached at once; with `over_budget_inbound: message` the caller hears the organisation's
    message and the call ends without an agent. The budget is lifted again for the other tests of this org."""
    headers = {"Authorization": f"Bearer {owner[0]}"}
    line = await twilio_line_with()
    message = "Sorry, this line is closed for the month."
    put = await http.put(f"{backend_url}/api/v1/org/billing/budget", headers=headers, json={
        "monthly_budget": 0, "over_budget_inbound": "message", "over_budget_message": message})
    assert put.status_code == 200 and put.json()["over_budget"], put.text
    try:
        report = await simulate(line, CallScript(turns=[], hangup_after_s=None, max_duration_s=30))
    finally:
        lifted = await http.put(f"{backend_url}/api/v1/org/billing/budget", headers=headers,
                                json={"monthly_budget": None})
        assert lifted.status_code == 200
    assert report.rejected_message == message, (report.rejected_message, report.answer_xml)
    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id),
                               lambda c: c.get("ended_at") is not None)
    assert "budget" in (call.get("end_detail") or ""), call
