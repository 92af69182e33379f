"""The single-writer machinery: leader election between replicas, and re-applying events after a crash changes
nothing."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest
from backend_testkit import call_events, post_events, register

from backend.db.collections import (
    CALL_TURNS,
    DEAD_LETTERS,
    OUTBOX,
    OUTBOX_DEFERRED,
    TOKEN_USES,
    outbox_lane,
)
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
         "received_at": utcnow(), "deferrals": 0, "event_json": json.dumps(e)} for e in events])
    services.processor._reset_caches()  # a fresh leader: nothing cached
    await services.processor.run_once()
    detail_after = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail_after == detail_before
    assert await services.db[CALL_TURNS].count_documents({"call_id": call_id}) == 4
    listed = (await client.get("/api/v1/calls", headers=owner.headers)).json()["items"]
    assert [c["id"] for c in listed] == [call_id]


async def test_a_backlog_is_applied_lane_by_lane_with_every_event_once(
    client: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full batch makes the leader read the outbox one lane at a time (so deleting a batch's events reads one lane,
    not the whole backlog); events from an older release, without a lane, still apply."""
    owner = await register(client, "backlog")
    calls = [call_events(owner.org_id, turns=2) for _ in range(12)]
    # Posted events carry their call's lane (seen on the ones that wait for their call.started).
    first_call, first_events = calls[0]
    await post_events(client, first_events[1:])
    waiting = [d async for d in services.db[OUTBOX_DEFERRED].find({"call_id": first_call})]
    assert len(waiting) == 3 and {d["lane"] for d in waiting} == {outbox_lane(first_call)}
    await post_events(client, first_events[:1])
    await services.processor.run_once()  # the waiting events came back when their call started
    detail = (await client.get(f"/api/v1/calls/{first_call}", headers=owner.headers)).json()
    assert detail["status"] == "completed"
    # The rest as a backlog stored while no leader applied it: 44 events against batches of 6, two calls' events
    # written before lanes existed.
    backlog = []
    for n, (call_id, events) in enumerate(calls[1:]):
        lane = {} if n < 2 else {"lane": outbox_lane(call_id)}
        backlog += [{"_id": e["event_id"], "kind": "call", "call_id": call_id, "type": e["type"], "at": utcnow(),
                     "received_at": utcnow(), "deferrals": 0, "event_json": json.dumps(e), **lane} for e in events]
    monkeypatch.setattr(services.processor, "_batch_size", 6)
    await services.db[OUTBOX].insert_many(backlog)
    while await services.processor.run_once():
        pass
    assert await services.db[OUTBOX].count_documents({}) == 0
    assert len({outbox_lane(call_id) for call_id, _ in calls}) > 4  # spread over lanes
    for call_id, _ in calls:
        detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
        assert detail["status"] == "completed", detail
        assert [t["turn_index"] for t in detail["turns"]] == [0, 1]
        assert await services.db[CALL_TURNS].count_documents({"call_id": call_id}) == 2
    listed = (await client.get("/api/v1/calls", params={"limit": 50}, headers=owner.headers)).json()["items"]
    assert sorted(c["id"] for c in listed) == sorted(call_id for call_id, _ in calls)


async def test_deferred_events_come_back_after_their_backoff_and_survive_a_crash_mid_move(
    client: httpx.AsyncClient, services: Services
) -> None:
    owner = await register(client, "backoff")
    call_id, events = call_events(owner.org_id, turns=2)
    started, rest = events[0], events[1:]
    await post_events(client, rest)
    assert await services.db[OUTBOX_DEFERRED].count_documents({"call_id": call_id}) == len(rest)
    # Their backoff ends; a new leader (nothing in memory) moves them back and, their call still unknown, defers
    # them again with a longer backoff.
    await services.db[OUTBOX_DEFERRED].update_many({"call_id": call_id}, {"$set": {"retry_at": utcnow()}})
    services.processor._reset_caches()
    await services.processor.run_once()
    waiting = [d async for d in services.db[OUTBOX_DEFERRED].find({"call_id": call_id})]
    assert len(waiting) == len(rest) and min(d["deferrals"] for d in waiting) >= 2
    assert await services.db[OUTBOX].count_documents({"call_id": call_id}) == 0
    # As if the leader died mid-move: one event is in both places. Each is applied once all the same.
    await services.db[OUTBOX].insert_one({k: v for k, v in waiting[0].items() if k != "retry_at"})
    await post_events(client, [started])
    await services.processor.run_once()
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail["status"] == "completed" and [t["turn_index"] for t in detail["turns"]] == [0, 1]
    assert await services.db[CALL_TURNS].count_documents({"call_id": call_id}) == 2
    assert await services.db[OUTBOX].count_documents({"call_id": call_id}) == 0
    assert await services.db[OUTBOX_DEFERRED].count_documents({"call_id": call_id}) == 0


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


async def test_ended_calls_are_archived_and_late_events_still_apply(
    client: httpx.AsyncClient, services: Services
) -> None:
    from backend.db.collections import CALL_RECORDINGS, CALL_TRANSCRIPTS, CALLS, CALLS_ARCHIVE

    owner = await register(client, "archive")
    call_id, events = call_events(owner.org_id, turns=2)
    await post_events(client, events[:-1])
    live = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert live["status"] == "in_progress" and [t["turn_index"] for t in live["turns"]] == [0, 1]
    assert await services.db[CALLS].find_one({"_id": call_id}) is not None
    await post_events(client, events[-1:])
    # Ended: the final record and the transcript are inserted once; the call leaves the small collection.
    assert await services.db[CALLS].find_one({"_id": call_id}) is None
    assert await services.db[CALLS_ARCHIVE].find_one({"_id": call_id}) is not None
    assert await services.db[CALL_TRANSCRIPTS].find_one({"_id": call_id}) is not None
    ended = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert ended["status"] == "completed" and ended["turns"] == live["turns"]
    # A recording registered after the end, and after a leader change (nothing in memory).
    services.processor._reset_caches()
    key = f"{owner.org_id}/{call_id}.wav"
    await services.store.put_bytes(key, b"RIFF....", "audio/wav")
    await post_events(client, [{"type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": call_id,
                                "bucket": services.store.bucket, "key": key, "size_bytes": 8, "duration_s": 1.0,
                                "sample_rate": 8000}])
    assert (await services.db[CALL_RECORDINGS].find_one({"_id": call_id}))["key"] == key
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail["has_recording"] and detail["recording"]["size_bytes"] == 8 and detail["turns"] == live["turns"]
    link = await client.get(f"/api/v1/calls/{call_id}/recording", headers=owner.headers)
    assert link.status_code == 200
    listed = (await client.get("/api/v1/calls", headers=owner.headers)).json()["items"]
    assert listed[0]["id"] == call_id and listed[0]["has_recording"] is True
    summary = (await client.get("/api/v1/analytics/summary", params={"since": "2030-01-15", "until": "2030-01-15"},
                                headers=owner.headers)).json()
    assert summary["total_calls"] == 1 and summary["ended_calls"] == 1


async def test_old_list_pages_move_to_the_archive(client: httpx.AsyncClient, services: Services) -> None:
    from backend.db.collections import CALL_LOG_PAGES, CALL_LOG_PAGES_ARCHIVE
    from backend.services.call_log import PAGE_SIZE

    owner = await register(client, "pages")
    batch = []
    for i in range(PAGE_SIZE * 3 + 5):
        batch.append({"type": "call.started", "event_id": uuid.uuid4().hex, "call_id": uuid.uuid4().hex,
                      "org_id": owner.org_id, "at": f"2030-04-01T10:{i // 60:02d}:{i % 60:02d}+00:00",
                      "direction": "inbound", "carrier": "twilio", "from_number": "+14155550100",
                      "to_number": "+14155550101"})
    await post_events(client, batch)
    first = await _all_ids(client, owner.headers)
    assert len(first) == len(batch)
    await services.processor.archive_old_pages()
    assert await services.db[CALL_LOG_PAGES_ARCHIVE].count_documents({"org_id": owner.org_id}) == 2
    assert await services.db[CALL_LOG_PAGES].count_documents({"org_id": owner.org_id}) == 2
    services.call_log._cache = type(services.call_log._cache)()  # read through to the database
    assert await _all_ids(client, owner.headers) == first


async def _all_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = (await client.get("/api/v1/calls", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                                 headers=headers)).json()
        ids += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


async def test_housekeeping_purges_single_use_marks_only_after_their_tokens_expired(services: Services) -> None:
    s = services.settings
    longest_s = max(s.refresh_token_ttl_s, s.invitation_ttl_s)
    old, recent = f"browser:{uuid.uuid4().hex}", f"rt:{uuid.uuid4().hex}"
    await services.db[TOKEN_USES].insert_many([
        {"_id": old, "at": utcnow() - timedelta(seconds=longest_s + 2 * 24 * 3600)},
        {"_id": recent, "at": utcnow() - timedelta(seconds=longest_s - 3600)},  # its token may still be presented
    ])
    assert await services.auth.purge_token_uses() >= 1
    assert await services.db[TOKEN_USES].find_one({"_id": old}) is None
    assert await services.db[TOKEN_USES].find_one({"_id": recent}) is not None
