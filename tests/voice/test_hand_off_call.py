"""A flow's hand-off executed on a real call: the embedded LLM is forced (tool_choice) to call the hand-off, the call
switches to the other agent of the organisation (its prompt, tools, greeting, voice and end-call settings, with a
summary of the call so far), and the call detail shows the step and the tool event. The other agent's voice is told
apart by its speed (the test machine has one Piper voice): its greeting plays in about half the time. A hand-off whose agent was deleted after the flow was saved
answers that the agent is unavailable and the call carries on (pipelines/hand_off.py)."""

from __future__ import annotations

from typing import Any

import httpx
from stack_helpers import synthesize
from voicetest_helpers import Simulate, ended_with_recording, wait_for_call

from voice_server.answering import inbound_call_id
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

SALES_GREETING = "Hi, this is Sam from sales. What would you like to buy?"
SALES_GOODBYE = "Thanks for calling sales, bye for now."


def hand_off_flow(sales_id: str) -> dict[str, Any]:
    return {
        "start_node": "greet",
        "nodes": [
            {"name": "greet", "task_prompt": "Hand every caller to the sales team.", "tool_choice": "to_sales",
             "transitions": [{"to": "done", "function": "finish", "description": "The caller has no question."}]},
            {"name": "done", "task_prompt": "Say goodbye.", "end": True},
        ],
        "hand_offs": [{"name": "to_sales", "agent_id": sales_id, "description": "The caller wants to buy."}],
    }


async def _sales_agent(http: httpx.AsyncClient, line_backend: str, owner: tuple[str, str]) -> str:
    resp = await http.post(f"{line_backend}/api/v1/agents", headers={"Authorization": f"Bearer {owner[0]}"}, json={
        "name": "Sales", "config": {"system_prompt": "You are Sam, who sells phones. Answer in one sentence.",
                                    "greeting": SALES_GREETING, "goodbye": SALES_GOODBYE, "tts": {"speed": 2.0},
                                    # forced: the caller's next words end the call with Sales' own goodbye
                                    "llm": {"max_tokens": 30, "temperature": 0.0, "tool_choice": "end_call"}}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _front_desk(twilio_line_with, http: httpx.AsyncClient, backend_url: str,  # type: ignore[no-untyped-def]
                      owner: tuple[str, str]) -> tuple[str, SimLine]:
    """A Sales agent, and a line whose flow agent hands callers to it."""
    sales_id = await _sales_agent(http, backend_url, owner)
    line: SimLine = await twilio_line_with(
        greeting="Hello, this is the front desk.", llm={"max_tokens": 30, "temperature": 0.0},
        silence={"reminder_after_s": 30.0, "max_reminders": 0}, flow=hand_off_flow(sales_id))
    return sales_id, line


async def _call(simulate: Simulate, line: SimLine, http: httpx.AsyncClient, tts_url: str) -> dict[str, Any]:
    turns = [CallerTurn(audio=synthesize(tts_url, "I would like to buy a new phone."), gap_s=0.6, label="buy"),
             CallerTurn(audio=synthesize(tts_url, "That is all, thank you."), gap_s=0.6, label="done")]
    # The caller stays on long enough for a loaded 2-core machine: forced tool call, switch, then the new greeting.
    report = await simulate(line, CallScript(turns=turns, hangup_after_s=20.0, max_duration_s=90))
    return await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id), ended_with_recording)


async def test_a_flow_hands_the_call_to_another_agent(  # type: ignore[no-untyped-def]
        simulate: Simulate, twilio_line_with, http: httpx.AsyncClient, tts_url: str, backend_url: str,
        owner: tuple[str, str]) -> None:
    sales_id, line = await _front_desk(twilio_line_with, http, backend_url, owner)
    call = await _call(simulate, line, http, tts_url)

    steps = [(s["node"], s["via"]) for s in call["flow_path"]]
    assert steps == [("greet", "start"), ("agent:Sales", "to_sales")], (steps, call["turns"], call["tools"])
    hand_off = [t for t in call["tools"] if t["name"] == "to_sales"]
    assert hand_off and hand_off[0]["ok"] and sales_id in hand_off[0]["detail"], call["tools"]
    agent_turns = [t["text"] for t in call["turns"] if t["speaker"] == "agent"]
    assert SALES_GREETING in agent_turns, agent_turns  # the other agent speaks now
    # ... in its own voice: at speed 2.0 its greeting takes about half as long as at the first agent's 1.0
    greeting = next(t for t in call["turns"] if t["speaker"] == "agent" and t["text"] == SALES_GREETING)
    at_normal_speed_ms = len(synthesize(tts_url, SALES_GREETING)) / 16  # PCM16 at 8 kHz
    assert greeting["end_ms"] - greeting["start_ms"] < 0.8 * at_normal_speed_ms, (greeting, at_normal_speed_ms)
    # ... and with its own end-call settings: its goodbye, not the first agent's
    assert call["end_reason"] == "agent_hangup", (call["end_reason"], call["turns"], call["tools"])
    assert agent_turns[-1] == SALES_GOODBYE, agent_turns


async def test_a_hand_off_to_an_agent_deleted_since_is_unavailable_and_the_call_goes_on(  # type: ignore[no-untyped-def]
        simulate: Simulate, twilio_line_with, http: httpx.AsyncClient, tts_url: str, backend_url: str,
        owner: tuple[str, str]) -> None:
    sales_id, line = await _front_desk(twilio_line_with, http, backend_url, owner)
    deleted = await http.delete(f"{backend_url}/api/v1/agents/{sales_id}",
                                headers={"Authorization": f"Bearer {owner[0]}"})
    assert deleted.status_code == 204, deleted.text
    call = await _call(simulate, line, http, tts_url)

    attempts = [t for t in call["tools"] if t["name"] == "to_sales"]
    assert attempts and not attempts[0]["ok"] and "unavailable" in attempts[0]["detail"], call["tools"]
    assert not any(s["node"].startswith("agent:") for s in call["flow_path"]), call["flow_path"]
    assert call["end_reason"] != "error", (call["end_reason"], call.get("end_detail"))
