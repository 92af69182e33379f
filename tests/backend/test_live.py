"""Live calls: the organisation's calls in progress (list and event stream) and one call's live view (turns and
tool calls as they are applied, then its end), scoped to the caller's organisation."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from backend_testkit import add_member, call_events, post_events, register

from backend.security.permissions import Principal, Role
from backend.services.container import Services


async def _connected() -> bool:
    return False


async def _next_event(stream: AsyncIterator[str]) -> tuple[str, Any]:
    while True:
        chunk = await asyncio.wait_for(anext(stream), 20)
        if chunk.startswith(":"):
            continue
        fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines())
        return fields["event"], json.loads(fields["data"])


async def test_live_calls_list_and_stream(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "live")
    member = await add_member(client, owner, "member")
    other = await register(client, "elsewhere")
    call_id, events = call_events(owner.org_id, turns=2)
    await post_events(client, events[:-1])  # in progress
    listed = (await client.get("/api/v1/live/calls", headers=member.headers)).json()
    assert [(c["id"], c["turn_count"], c["last_v2v_ms"]) for c in listed] == [(call_id, 2, 601.0)]
    assert (await client.get("/api/v1/live/calls", headers=other.headers)).json() == []

    principal = Principal(org_id=owner.org_id, role=Role.member, user_id=member.user_id)
    stream = services.live.org_stream(principal, _connected)
    event, calls = await _next_event(stream)
    assert event == "calls" and [c["id"] for c in calls] == [call_id]
    second_id, second = call_events(owner.org_id, turns=0)
    await post_events(client, second[:1])
    event, calls = await _next_event(stream)
    assert {c["id"] for c in calls} == {call_id, second_id}
    await post_events(client, events[-1:] + second[1:])  # both end
    event, calls = await _next_event(stream)
    assert calls == []
    await stream.aclose()


async def test_live_call_view(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "view")
    other = await register(client, "nosy")
    call_id, events = call_events(owner.org_id, turns=2)
    await post_events(client, events[:2])  # started, first turn
    assert (await client.get(f"/api/v1/live/calls/{call_id}/stream", headers=other.headers)).status_code == 404
    assert (await client.get("/api/v1/live/calls/nope/stream", headers=owner.headers)).status_code == 404

    principal = Principal(org_id=owner.org_id, role=Role.member, user_id=owner.user_id)
    stream = services.live.call_stream(principal, call_id, _connected)
    event, turn = await _next_event(stream)
    assert event == "turn" and turn["turn_index"] == 0 and turn["speaker"] == "caller"
    await post_events(client, [events[2]])
    event, turn = await _next_event(stream)
    assert event == "turn" and turn["turn_index"] == 1 and turn["latency"]["voice_to_voice_ms"] == 601.0
    await post_events(client, [{"type": "call.tool", "event_id": uuid.uuid4().hex, "call_id": call_id,
                                "name": "transfer_call", "ok": True, "duration_ms": 40.0,
                                "at": "2030-01-15T10:00:20+00:00"}])
    event, tool = await _next_event(stream)
    assert event == "tool" and tool["name"] == "transfer_call"
    await post_events(client, events[-1:])
    event, end = await _next_event(stream)
    assert event == "end" and end["end_reason"] == "caller_hangup"


async def test_whisper_listen_and_takeover_are_for_admins_and_need_the_calls_replica(client: httpx.AsyncClient,
                                                                 services: Services) -> None:
    owner = await register(client, "whisper")
    admin = await add_member(client, owner, "admin")
    member = await add_member(client, owner, "member")
    call_id, events = call_events(owner.org_id, turns=2)
    events[0]["voice_server_id"] = f"vs-{uuid.uuid4().hex[:8]}"
    await post_events(client, events[:-1])
    url = f"/api/v1/live/calls/{call_id}/whisper"
    body = {"text": "Offer the caller a refund"}
    assert (await client.post(url, json=body, headers=member.headers)).status_code == 403
    assert (await client.post(url, json={"text": ""}, headers=admin.headers)).status_code == 422
    # No heartbeat from the voice server that holds the call: it is gone, and the error says so.
    resp = await client.post(url, json=body, headers=admin.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "voice_server_gone"
    listen = f"/api/v1/live/calls/{call_id}/listen"
    assert (await client.post(listen, headers=member.headers)).status_code == 403
    resp = await client.post(listen, headers=admin.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "voice_server_gone"
    takeover = f"/api/v1/live/calls/{call_id}/takeover"
    assert (await client.post(takeover, headers=member.headers)).status_code == 403
    resp = await client.post(takeover, headers=admin.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "voice_server_gone"
    other = await register(client, "whisper-other")
    assert (await client.post(url, json=body, headers=other.headers)).status_code == 404
    assert (await client.post(takeover, headers=other.headers)).status_code == 404
    await post_events(client, events[-1:])
    # Ended (and moved out of the live list): a clear 409, not a "no such call".
    for action, payload in ((url, body), (listen, None), (takeover, None)):
        resp = await client.post(action, json=payload, headers=admin.headers)
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "call_ended", action
    audited = [e["action"] async for e in services.db["audit_log"].find({"org_id": owner.org_id})]
    assert "call.taken_over" not in audited  # nothing was taken over: refused requests leave no audit entry
