"""Flow agents through the API: stored as part of the versioned config, refused with a 422 naming the node or the
hand-off when they could not run, and the path a call took shown on its detail."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
from backend_testkit import AGENT_CONFIG, call_events, create_agent, post_events, register
from booking_flow import BOOKING_FLOW


def _with_flow(flow: dict[str, Any]) -> dict[str, Any]:
    return {**AGENT_CONFIG, "flow": flow}


async def test_a_flow_is_a_versioned_part_of_the_agent(client: httpx.AsyncClient) -> None:
    owner = await register(client, "flows")
    created = await client.post("/api/v1/agents", json={"name": "Bookings", "config": _with_flow(BOOKING_FLOW)},
                                headers=owner.headers)
    assert created.status_code == 201, created.text
    agent = created.json()
    assert [n["name"] for n in agent["config"]["flow"]["nodes"]] == ["greet", "collect", "confirm", "end"]
    single = await client.put(f"/api/v1/agents/{agent['id']}", json={"config": AGENT_CONFIG}, headers=owner.headers)
    assert single.json()["version"] == 2 and single.json()["config"]["flow"] is None
    v1 = (await client.get(f"/api/v1/agents/{agent['id']}/versions/1", headers=owner.headers)).json()
    assert v1["config"]["flow"]["start_node"] == "greet"


async def test_a_broken_flow_gets_a_422_naming_the_node(client: httpx.AsyncClient) -> None:
    owner = await register(client, "broken-flows")
    flow = copy.deepcopy(BOOKING_FLOW)
    flow["nodes"][1]["transitions"][0]["to"] = "nowhere"
    resp = await client.post("/api/v1/agents", json={"name": "B", "config": _with_flow(flow)}, headers=owner.headers)
    assert resp.status_code == 422
    assert "node 'collect': transition to unknown node 'nowhere'" in resp.json()["error"]["message"]


async def test_a_hand_off_to_a_deleted_agent_is_refused(client: httpx.AsyncClient) -> None:
    owner, other = await register(client, "hand-off"), await register(client, "hand-off-other")
    sales, foreign = await create_agent(client, owner, "Sales"), await create_agent(client, other, "Foreign")
    flow = {**copy.deepcopy(BOOKING_FLOW),
            "hand_offs": [{"name": "to_sales", "agent_id": sales["id"], "description": "The caller wants to buy."}]}
    ok = await client.post("/api/v1/agents", json={"name": "Front", "config": _with_flow(flow)}, headers=owner.headers)
    assert ok.status_code == 201, ok.text
    assert (await client.delete(f"/api/v1/agents/{sales['id']}", headers=owner.headers)).status_code == 204
    stale = await client.put(f"/api/v1/agents/{ok.json()['id']}", json={"config": _with_flow(flow)},
                             headers=owner.headers)
    assert stale.status_code == 422
    error = stale.json()["error"]
    assert "hand-off 'to_sales'" in error["message"] and "deleted" in error["message"]
    assert error["details"][0]["path"] == "body.config.flow.hand_offs.0.agent_id"
    flow["hand_offs"][0]["agent_id"] = foreign["id"]  # another organisation's agent reads as missing
    other_org = await client.post("/api/v1/agents", json={"name": "X", "config": _with_flow(flow)},
                                  headers=owner.headers)
    assert other_org.status_code == 422


async def test_the_call_detail_shows_the_flow_path_and_variables(client: httpx.AsyncClient) -> None:
    owner = await register(client, "flow-calls")
    call_id, events = call_events(owner.org_id, turns=0)
    steps = [("greet", None, "start", {}), ("collect", "greet", "start_booking", {}),
             ("confirm", "collect", "save_collect", {"date": "Friday", "name": "Peter"})]
    flow_events = [{"type": "call.flow_node", "event_id": uuid.uuid4().hex, "call_id": call_id, "node": node,
                    "from_node": src, "via": via, "variables": variables, "at_ms": 1000 * i,
                    "at": "2030-01-15T10:00:01+00:00"} for i, (node, src, via, variables) in enumerate(steps)]
    await post_events(client, [events[0], *reversed(flow_events), events[-1]])
    await post_events(client, flow_events[:1])  # a repeat changes nothing
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert [(s["node"], s["via"]) for s in detail["flow_path"]] == [(n, v) for n, _, v, _ in steps]
    assert detail["flow_variables"] == {"date": "Friday", "name": "Peter"}


async def test_test_runs_are_stored_per_agent_version(client: httpx.AsyncClient) -> None:
    owner = await register(client, "test-runs")
    agent = await create_agent(client, owner)
    run = {"version": 1, "suite": "data/agent-tests/booking.yaml", "results": [
        {"name": "books", "status": "failed", "failures": ["expected {'kind': 'transferred'}"], "call_id": "c1",
         "transcript": ["agent: hi"]},
        {"name": "persona", "status": "skipped", "failures": ["needs a stronger LLM"]}]}
    stored = await client.post(f"/api/v1/agents/{agent['id']}/test-runs", json=run, headers=owner.headers)
    assert stored.status_code == 201, stored.text
    assert (stored.json()["passed"], stored.json()["failed"], stored.json()["skipped"]) == (0, 1, 1)
    listed = (await client.get(f"/api/v1/agents/{agent['id']}/test-runs", headers=owner.headers)).json()
    assert [r["version"] for r in listed] == [1] and listed[0]["results"][0]["failures"]
    future = await client.post(f"/api/v1/agents/{agent['id']}/test-runs", json={**run, "version": 9},
                               headers=owner.headers)
    assert future.status_code == 422
    other = await register(client, "test-runs-other")
    assert (await client.get(f"/api/v1/agents/{agent['id']}/test-runs", headers=other.headers)).status_code == 404
