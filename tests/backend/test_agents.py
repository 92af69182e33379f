"""Agents: CRUD, versions, optimistic concurrency, validation errors with field paths."""

from __future__ import annotations

import httpx
from backend_testkit import AGENT_CONFIG, create_agent, register, unique_number


async def test_agent_crud_and_versions(client: httpx.AsyncClient) -> None:
    owner = await register(client, "agents")
    agent = await create_agent(client, owner, "Receptionist")
    assert agent["version"] == 1 and len(agent["id"]) == 32 and agent["id"] != "Receptionist"
    assert agent["config"]["variables"] == {"business": "Test Co"}
    assert agent["config"]["llm"]["temperature"] == 0.6  # defaults filled in

    renamed = await client.patch(f"/api/v1/agents/{agent['id']}", json={"name": "Front desk"}, headers=owner.headers)
    assert renamed.json()["name"] == "Front desk" and renamed.json()["version"] == 1  # no config, no new version

    new_config = {**AGENT_CONFIG, "greeting": "Hi there"}
    saved = await client.put(f"/api/v1/agents/{agent['id']}", json={"config": new_config, "note": "warmer greeting",
                                                                     "base_version": 1}, headers=owner.headers)
    assert saved.status_code == 200 and saved.json()["version"] == 2
    assert saved.json()["config"]["greeting"] == "Hi there"

    stale = await client.put(f"/api/v1/agents/{agent['id']}", json={"config": AGENT_CONFIG, "base_version": 1},
                             headers=owner.headers)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "version_conflict"

    versions = (await client.get(f"/api/v1/agents/{agent['id']}/versions", headers=owner.headers)).json()
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["note"] == "warmer greeting"
    v1 = (await client.get(f"/api/v1/agents/{agent['id']}/versions/1", headers=owner.headers)).json()
    assert v1["config"]["greeting"] == "Hello from {{business}}"
    assert (await client.get(f"/api/v1/agents/{agent['id']}/versions/9", headers=owner.headers)).status_code == 404

    restored = await client.post(f"/api/v1/agents/{agent['id']}/versions/1/restore", headers=owner.headers)
    assert restored.json()["version"] == 3 and restored.json()["config"]["greeting"] == "Hello from {{business}}"

    listed = (await client.get("/api/v1/agents", headers=owner.headers)).json()
    assert [a["id"] for a in listed] == [agent["id"]] and listed[0]["version"] == 3

    defaults = (await client.get("/api/v1/agents/defaults", headers=owner.headers)).json()
    assert defaults["tts"]["engine"] == "piper"

    assert (await client.delete(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).status_code == 404
    assert (await client.get("/api/v1/agents", headers=owner.headers)).json() == []


async def test_agent_linked_to_a_number_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    owner = await register(client, "linked")
    agent = await create_agent(client, owner)
    number = await client.post("/api/v1/phone-numbers", json={"number": unique_number(), "carrier": "vobiz",
                                                             "agent_id": agent["id"]}, headers=owner.headers)
    refused = await client.delete(f"/api/v1/agents/{agent['id']}", headers=owner.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "agent_in_use"
    unlink = await client.patch(f"/api/v1/phone-numbers/{number.json()['id']}", json={"agent_id": None},
                                headers=owner.headers)
    assert unlink.json()["agent_id"] is None
    assert (await client.delete(f"/api/v1/agents/{agent['id']}", headers=owner.headers)).status_code == 204


async def test_validation_errors_name_each_field(client: httpx.AsyncClient) -> None:
    owner = await register(client, "invalid")
    bad = {
        "name": "",
        "config": {
            "llm": {"temperature": 5},
            "tools": [{"name": "lookup", "description": "x", "url": "not a url"}],
            "transfer_targets": [{"name": "desk", "phone_number": "12345"}],
            "surprise": True,
        },
    }
    resp = await client.post("/api/v1/agents", json=bad, headers=owner.headers)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "validation_error" and error["request_id"]
    paths = {d["path"] for d in error["details"]}
    assert {"body.name", "body.config.llm.temperature", "body.config.tools.0.url",
            "body.config.transfer_targets.0.phone_number", "body.config.surprise"} <= paths
    assert all(d["message"] for d in error["details"])

    dup_tools = {"name": "x", "config": {"tools": [
        {"name": "t", "description": "a", "url": "https://example.com/a"},
        {"name": "t", "description": "b", "url": "https://example.com/b"}]}}
    resp = await client.post("/api/v1/agents", json=dup_tools, headers=owner.headers)
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["path"] == "body.config.tools"

    not_json = await client.post("/api/v1/agents", content=b"{", headers={**owner.headers,
                                                                         "Content-Type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "validation_error"
    bad_query = await client.get("/api/v1/calls?limit=0", headers=owner.headers)
    assert bad_query.status_code == 422 and bad_query.json()["error"]["details"][0]["path"] == "query.limit"
