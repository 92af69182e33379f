"""The single-writer machinery: leader election between replicas, and re-applying events after a crash changes
nothing."""

from __future__ import annotations

import json
import uuid

import httpx
from backend_testkit import call_events, post_events, register

from backend.db.collections import CALL_TURNS, DEAD_LETTERS, OUTBOX
from backend.db.ids import utcnow
from backend.services.container import Services
from backend.services.leader import Leadership


async def test_one_leader_per_window_and_takeover(services: Services) -> None:
    name = f"test-{uuid.uuid4().hex[:6]}"
    a, b = Leadership(services.db, name, window_s=10), Leadership(services.db, name, window_s=10)
    base = 1_000_000.0
    assert await a.is_leader(base + 1) is True
    assert await b.is_leader(base + 1) is False
    # Past half-way the leader claims the next window too, so it keeps leading.
    assert await a.is_leader(base + 6) is True
    assert await b.is_leader(base + 11) is False and await a.is_leader(base + 11) is True
    # The leader stops (no renewal); the next free window goes to the survivor.
    assert await b.is_leader(base + 21) is True
    assert b.term == 1 and a.term == 1


async def test_reapplying_events_after_a_crash_changes_nothing(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "crash")
    call_id, events = call_events(owner.org_id, turns=4)
    await post_events(client, events)
    detail_before = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    # As if the processor died after applying but before removing the events from the outbox.
    await services.db[OUTBOX].insert_many([
        {"_id": e["event_id"], "kind": "call", "call_id": call_id, "type": e["type"], "at": utcnow(),
         "received_at": utcnow(), "retry_at": None, "deferrals": 0, "event_json": json.dumps(e)} for e in events])
    services.processor._reset_caches()  # a fresh leader: nothing cached
    await services.processor.run_once()
    detail_after = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail_after == detail_before
    assert await services.db[CALL_TURNS].count_documents({"call_id": call_id}) == 4
    listed = (await client.get("/api/v1/calls", headers=owner.headers)).json()["items"]
    assert [c["id"] for c in listed] == [call_id]


async def test_conflicting_start_is_dead_lettered(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "conflict")
    other = await register(client, "conflict-b")
    call_id, events = call_events(owner.org_id, turns=0)
    await post_events(client, events)
    hijack = {**events[0], "event_id": uuid.uuid4().hex, "org_id": other.org_id}
    await post_events(client, [hijack])
    dead = await services.db[DEAD_LETTERS].find_one({"_id": hijack["event_id"]})
    assert dead is not None and "another organisation" in dead["reason"]
    assert (await client.get(f"/api/v1/calls/{call_id}", headers=other.headers)).status_code == 404
    assert (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 200
