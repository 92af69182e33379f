"""Post-call analysis with the real embedded LLM (SmolLM2-135M on the llama.cpp server): a call that ends is
analysed off the call path, the answer is valid JSON matching the agent's extraction schema (JSON mode with a
schema: a grammar), stored on the call, shown in the call detail and sent as the `call.analyzed` webhook.
A bad extraction schema is a 422 on the agent save.

What the small model writes inside that shape (the summary's wording, whether `success` is right) is its own and
weak; these tests assert the shape and the plumbing, not the model's judgement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from backend_testkit import AGENT_CONFIG, backend_settings, post_events, register
from fastapi import FastAPI, Request
from stack_helpers import LocalServer

from backend.main import create_app

pytestmark = pytest.mark.timeout(300)

ANALYSIS = {
    "summary_prompt": "Summarise the call in one sentence.",
    "success_rubric": "an appointment was booked",
    "extraction_schema": {"type": "object", "properties": {
        "appointment_day": {"type": "string", "description": "the day of the appointment"},
        "callback_requested": {"type": "boolean"}}},
}


@pytest.fixture(scope="module")
async def analysing_client(data_services: dict[str, str], llm_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(backend_settings(mongodb_db=f"analysis_{uuid.uuid4().hex[:8]}",
                                      analysis_llm_base_url=f"{llm_url}/v1"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_bad_analysis_config_is_a_422_that_saves_nothing(analysing_client: httpx.AsyncClient) -> None:
    owner = await register(analysing_client, "badanalysis")
    for schema in ({"type": "array"}, {"type": "object"},
                   {"type": "object", "properties": {"x": {"type": "object"}}}, "not a schema"):
        resp = await analysing_client.post("/api/v1/agents", headers=owner.headers, json={
            "name": "A", "config": {**AGENT_CONFIG, "analysis": {**ANALYSIS, "extraction_schema": schema}}})
        assert resp.status_code == 422, (schema, resp.text)
        assert any("analysis" in (d.get("path") or "") for d in resp.json()["error"]["details"]), resp.text
    assert (await analysing_client.get("/api/v1/agents", headers=owner.headers)).json() == []


async def test_an_ended_call_is_analysed_into_valid_json(analysing_client: httpx.AsyncClient) -> None:
    owner = await register(analysing_client, "analysis")
    received: list[dict[str, Any]] = []
    hooks = FastAPI()

    @hooks.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        received.append(await request.json())
        return {"ok": "yes"}

    agent = (await analysing_client.post("/api/v1/agents", headers=owner.headers, json={
        "name": "Clinic", "config": {**AGENT_CONFIG, "analysis": ANALYSIS}})).json()
    async with LocalServer(hooks) as server:
        created = await analysing_client.post("/api/v1/webhooks", headers=owner.headers,
                                              json={"url": f"{server.url}/hook", "events": ["call.analyzed", "call.ended"]})
        assert created.status_code == 201, created.text
        call_id = uuid.uuid4().hex
        at = "2030-01-15T10:00:00+00:00"
        said = [("agent", "Hello, Test Clinic, how can I help?"),
                ("caller", "Can I book an appointment for next Tuesday?"),
                ("agent", "Yes, Tuesday at ten in the morning is booked for you."),
                ("caller", "Great, thank you. Goodbye.")]
        events: list[dict[str, Any]] = [{
            "type": "call.started", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": at,
            "org_id": owner.org_id, "agent_id": agent["id"], "agent_version": 1, "direction": "inbound",
            "carrier": "twilio", "from_number": "+14155550100", "to_number": "+14155550199"}]
        events += [{"type": "call.turn", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": at, "turn_index": i,
                    "speaker": who, "text": text, "start_ms": i * 2000, "end_ms": i * 2000 + 1500}
                   for i, (who, text) in enumerate(said)]
        events.append({"type": "call.ended", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": at,
                       "end_reason": "caller_hangup", "duration_s": 9.0})
        await post_events(analysing_client, events)

        analysis: dict[str, Any] = {}
        for _ in range(240):
            detail = (await analysing_client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
            analysis = detail.get("analysis") or {}
            if analysis.get("status") in ("done", "failed") and len(received) >= 2:
                break
            await asyncio.sleep(0.5)

    assert analysis.get("status") == "done", analysis
    assert isinstance(analysis["summary"], str) and analysis["summary"], analysis
    assert isinstance(analysis["success"], bool), analysis
    assert set(analysis["data"]) == {"appointment_day", "callback_requested"}, analysis
    assert isinstance(analysis["data"]["appointment_day"], str), analysis
    assert isinstance(analysis["data"]["callback_requested"], bool), analysis
    assert analysis["attempts"] == 1 and analysis["duration_ms"] > 0, analysis
    by_type = {r["type"]: r for r in received}
    analyzed, ended = by_type["call.analyzed"], by_type["call.ended"]
    assert analyzed["data"]["call_id"] == call_id and analyzed["data"]["analysis"]["data"] == analysis["data"]
    cost = ended["data"]["cost"]  # the call.ended webhook carries the cost breakdown
    assert cost["currency"] == "USD" and cost["total"] == detail["cost"]["total"], (cost, detail["cost"])
    verdict = analysis["success"]
    listed = (await analysing_client.get("/api/v1/calls", headers=owner.headers,
                                         params={"success": str(verdict).lower()})).json()
    assert [c["id"] for c in listed["items"]] == [call_id], listed
    other = (await analysing_client.get("/api/v1/calls", headers=owner.headers,
                                        params={"success": str(not verdict).lower()})).json()
    assert other["items"] == []
    exported = await analysing_client.get("/api/v1/calls/export.csv", headers=owner.headers)
    header, row = exported.text.splitlines()[:2]
    assert header.endswith("analysis_success,analysis_summary,data_appointment_day,data_callback_requested"), header
    assert row.split(",")[-1] == str(analysis["data"]["callback_requested"]), row
