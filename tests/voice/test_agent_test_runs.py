""""Run tests" from the agent editor, through the real backend and voice server: POST .../test-runs/start queues
the agent's saved scenarios, the backend's background loop places the scripted one as a browser test call (caller
lines synthesised by the TTS server, the real VAD/STT/LLM/TTS pipeline), and GET .../test-runs/{id} shows the
status and per-scenario results with the transcript. A persona scenario comes back skipped with the reason
(no stronger LLM is configured). A keypad scenario runs too: its keys go over the socket's `dtmf` messages to the
agent's collect_digits tool. Bad suites get 422 naming the field.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from voicetest_helpers import TEST_AGENT, VoiceServer

from core.agent_tests import PERSONA_NEEDS_LLM

pytestmark = pytest.mark.timeout(420)

SCENARIOS = [
    {"name": "asks about Saturday", "caller": [{"say": "What are your opening hours on Saturday?"}],
     "expect": [{"kind": "reply_contains", "words": ["thank you for calling", "test clinic"]},
                {"kind": "call_ended"}]},
    {"name": "an impatient caller", "kind": "simulated", "persona": "You want an appointment today."},
]
BOOKING = "482913"
KEYPAD_SCENARIO = {
    "name": "types a booking number",
    "caller": [{"say": "I want to check my booking."}, {"keys": BOOKING + "#"}],
    "expect": [{"kind": "tool_called", "name": "collect_digits", "detail_contains": f"6 digits by keypad: {BOOKING}"}],
}


async def _agent(http: httpx.AsyncClient, backend_url: str, headers: dict[str, str], **config: Any) -> str:
    resp = await http.post(f"{backend_url}/api/v1/agents", headers=headers,
                           json={"name": "Tested agent", "config": {**TEST_AGENT, **config}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def test_run_tests_places_the_saved_scenarios_and_reports_each(
        voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient, owner: tuple[str, str]) -> None:
    headers = {"Authorization": f"Bearer {owner[0]}"}
    agent_id = await _agent(http, backend_url, headers, test_scenarios=SCENARIOS,
                            silence={"reminder_after_s": 4.0, "max_reminders": 0})
    resp = await http.post(f"{backend_url}/api/v1/agents/{agent_id}/test-runs/start", headers=headers, json={})
    assert resp.status_code == 202, resp.text
    run = resp.json()
    assert run["status"] in ("queued", "running") and run["version"] == 1 and run["scenarios"] == 2

    deadline = time.monotonic() + 360
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        got = await http.get(f"{backend_url}/api/v1/agents/{agent_id}/test-runs/{run['id']}", headers=headers)
        assert got.status_code == 200, got.text
        run = got.json()
    scripted, persona = run["results"]
    assert scripted["status"] == "passed", (scripted, run["error"])
    assert scripted["call_id"] and any(line.startswith("caller: ") for line in scripted["transcript"])
    assert persona == {**persona, "status": "skipped", "failures": [PERSONA_NEEDS_LLM]}
    assert (run["status"], run["passed"], run["skipped"], run["failed"]) == ("passed", 1, 1, 0)
    # Stored with the version, listed in the editor, and the call is in the call log as a browser call.
    listed = (await http.get(f"{backend_url}/api/v1/agents/{agent_id}/test-runs", headers=headers)).json()
    assert [r["id"] for r in listed] == [run["id"]]
    call = (await http.get(f"{backend_url}/api/v1/calls/{scripted['call_id']}", headers=headers)).json()
    assert call["carrier"] == "browser" and call["agent_id"] == agent_id


async def _finished_run(http: httpx.AsyncClient, backend_url: str, headers: dict[str, str], agent_id: str,
                        run: dict[str, Any], limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        got = await http.get(f"{backend_url}/api/v1/agents/{agent_id}/test-runs/{run['id']}", headers=headers)
        assert got.status_code == 200, got.text
        run = got.json()
    return run


async def test_a_keypad_scenario_runs_over_the_browser_call(
        voice_server: VoiceServer, backend_url: str, http: httpx.AsyncClient, owner: tuple[str, str]) -> None:
    """The model is tests/voice/test_keypad_call.py (the same agent over the telephony simulator): the caller asks,
    the agent (SmolLM2 held to the tool by tool_choice) calls collect_digits without a word, and the runner presses
    the keys once the agent's turn is over. The tool gets them from the browser socket's dtmf messages."""
    headers = {"Authorization": f"Bearer {owner[0]}"}
    agent_id = await _agent(
        http, backend_url, headers, test_scenarios=[KEYPAD_SCENARIO],
        system_prompt="You look up bookings. Always collect the booking number with collect_digits.",
        llm={"max_tokens": 40, "temperature": 0.0, "tool_choice": "collect_digits"},
        collect_digits={"max_digits": 6, "end_key": "#", "timeout_s": 60},
        silence={"reminder_after_s": 90.0, "max_reminders": 0})
    resp = await http.post(f"{backend_url}/api/v1/agents/{agent_id}/test-runs/start", headers=headers, json={})
    assert resp.status_code == 202, resp.text
    run = await _finished_run(http, backend_url, headers, agent_id, resp.json(), 360)
    [keypad] = run["results"]
    # Stored with the agent version: the result links the browser call, which has its recording.
    call = (await http.get(f"{backend_url}/api/v1/calls/{keypad['call_id']}", headers=headers)).json()
    assert keypad["status"] == "passed", (keypad["failures"], keypad["transcript"], call.get("tools"), run["error"])
    assert (run["status"], run["passed"], run["skipped"], run["failed"]) == ("passed", 1, 0, 0)
    assert f"caller: [DTMF {BOOKING}]" in keypad["transcript"], keypad["transcript"]
    assert call["carrier"] == "browser" and call["agent_version"] == run["version"] == 1
    assert call["recording"] is not None, call


async def test_a_bad_suite_is_refused_naming_the_field(
        backend_url: str, http: httpx.AsyncClient, owner: tuple[str, str]) -> None:
    headers = {"Authorization": f"Bearer {owner[0]}"}
    agent_id = await _agent(http, backend_url, headers)
    start = f"{backend_url}/api/v1/agents/{agent_id}/test-runs/start"
    cases = {
        "scenarios:\n  - name: x\n    expect: [{kind: sentiment_positive}]\n":
            "scenarios.0.expect.0: unknown expectation 'sentiment_positive'",
        "scenarios:\n  - name: x\n    expect: [{kind: reply_contains, wordz: [hi]}]\n":
            "scenarios.0.expect.0.reply_contains.wordz",
        "scenarios:\n  - name: x\n    caller: [{keys: '12a'}]\n": "scenarios.0.caller.0.keys",
        "scenarios: [": "not valid YAML",
        "": "no scenarios",  # nothing pasted and none saved with the agent
    }
    for suite, named in cases.items():
        resp = await http.post(start, headers=headers, json={"suite_yaml": suite})
        assert resp.status_code == 422, resp.text
        assert named in resp.json()["error"]["message"] and "body.suite_yaml" in resp.json()["error"]["message"]
    # Saved scenarios are part of the agent config: a bad one is refused when the agent is saved, naming it.
    resp = await http.put(f"{backend_url}/api/v1/agents/{agent_id}", headers=headers, json={
        "config": {**TEST_AGENT, "test_scenarios": [{"name": "x", "expect": [{"kind": "nope"}]}]}})
    assert resp.status_code == 422 and "test_scenarios" in resp.text, resp.text
    resp = await http.post(start, headers=headers, json={"suite_yaml": "", "save_with_agent": True})
    assert resp.status_code == 422 and "body.save_with_agent" in resp.json()["error"]["message"], resp.text
    runs = (await http.get(f"{backend_url}/api/v1/agents/{agent_id}/test-runs", headers=headers)).json()
    assert runs == []
    agent = (await http.get(f"{backend_url}/api/v1/agents/{agent_id}", headers=headers)).json()
    assert agent["version"] == 1 and agent["config"]["test_scenarios"] == []


async def test_pasted_scenarios_saved_with_the_agent_become_a_new_version(
        backend_url: str, http: httpx.AsyncClient, owner: tuple[str, str]) -> None:
    headers = {"Authorization": f"Bearer {owner[0]}"}
    agent_id = await _agent(http, backend_url, headers)
    suite = "scenarios:\n  - name: a caller in a hurry\n    kind: simulated\n    persona: In a hurry.\n"  # no call placed
    resp = await http.post(f"{backend_url}/api/v1/agents/{agent_id}/test-runs/start", headers=headers,
                           json={"suite_yaml": suite, "save_with_agent": True})
    assert resp.status_code == 202, resp.text
    assert (resp.json()["version"], resp.json()["suite"]) == (2, "saved with version 2")
    agent = (await http.get(f"{backend_url}/api/v1/agents/{agent_id}", headers=headers)).json()
    assert [s["name"] for s in agent["config"]["test_scenarios"]] == ["a caller in a hurry"]
    versions = (await http.get(f"{backend_url}/api/v1/agents/{agent_id}/versions", headers=headers)).json()
    assert versions[0]["note"] == "test scenarios saved from Run tests"


async def test_the_persona_plumbing_talks_to_a_real_llm_server(llm_url: str, http: httpx.AsyncClient) -> None:
    """pipecat.evals' persona instruction and end_call tool, and its simulation judge, against the embedded LLM
    server (real, OpenAI-compatible). SmolLM2 is too weak for the answers to mean anything, so only their shape
    is asserted here; a meaningful persona run needs AGENT_TESTS_LLM_* pointing at a stronger model."""
    from backend.config import BackendSettings
    from backend.services.persona_llm import PersonaLlm
    from core.agent_tests import Scenario
    from voice_server.config import VoiceServerSettings
    from voicectl.speech_auth import speech_token

    settings = BackendSettings(agent_tests_llm_base_url=f"{llm_url}/v1", agent_tests_llm_model=VoiceServerSettings().llm_model,
                               agent_tests_llm_api_key=speech_token("tests"))
    persona = PersonaLlm(settings, http)
    assert persona.configured and not PersonaLlm(BackendSettings(), http).configured
    scenario = Scenario(name="p", kind="simulated", persona="A patient who wants an appointment on Friday.",
                        success="the agent offered an appointment on Friday")
    conversation = [("agent", "Hello, Test Clinic, how can I help?")]
    turn = await persona.reply(scenario, conversation)
    assert isinstance(turn.say, str) and isinstance(turn.hung_up, bool)
    verdict = await persona.judge(scenario, [*conversation, ("caller", "Can I come on Friday?"),
                                             ("agent", "Yes, Friday at ten works.")])
    assert isinstance(verdict.passed, bool) and verdict.reason
