"""Retention and deletion against the real FerretDB and MinIO: deleting a call (gone from detail, list, export,
analytics, object store; refused while live; late recordings of an erased call are deleted on arrival), forgetting
a phone number, retention settings (validated ranges) and the housekeeping sweep (idempotent, resumable)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from backend_testkit import Account, add_member, call_events, post_events, register

from backend.campaigns.collections import CONTACTS
from backend.db.collections import CALL_TURNS, ERASED_CALLS
from backend.services.call_deletion import ErasureQueue
from backend.services.container import Services
from backend.services.retention import RetentionService


async def _call_with_recording(client: httpx.AsyncClient, services: Services, owner: Account,
                               at: str = "2030-01-15T10:00:00+00:00", number: str | None = None) -> tuple[str, str]:
    call_id, events = call_events(owner.org_id, at=at)
    if number is not None:
        events[0]["from_number"] = number
    key = f"{owner.org_id}/{call_id}/recording.wav"
    await services.store.put_bytes(key, b"RIFF" + uuid.uuid4().bytes * 32, "audio/wav")
    events.append({"type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": at,
                   "bucket": services.store.bucket, "key": key, "size_bytes": 516, "duration_s": 4.0,
                   "sample_rate": 16000, "channels": 2})
    await post_events(client, events)
    return call_id, key


async def _list_ids(client: httpx.AsyncClient, owner: Account) -> list[str]:
    page = (await client.get("/api/v1/calls", headers=owner.headers)).json()
    return [c["id"] for c in page["items"]]


async def test_delete_call_removes_it_everywhere(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "erase")
    member = await add_member(client, owner, "member")
    kept, _ = await _call_with_recording(client, services, owner)
    call_id, key = await _call_with_recording(client, services, owner)
    assert set(await _list_ids(client, owner)) == {kept, call_id}
    analytics = {"since": "2030-01-15", "until": "2030-01-15"}
    before = (await client.get("/api/v1/analytics/summary", params=analytics, headers=owner.headers)).json()
    assert before["total_calls"] == 2

    assert (await client.delete(f"/api/v1/calls/{call_id}", headers=member.headers)).status_code == 403
    resp = await client.delete(f"/api/v1/calls/{call_id}", headers=owner.headers)
    assert resp.status_code == 204, resp.text

    assert (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 404
    assert (await client.get(f"/api/v1/calls/{call_id}/recording", headers=owner.headers)).status_code == 404
    assert await _list_ids(client, owner) == [kept]
    export = (await client.get("/api/v1/calls/export.csv", headers=owner.headers)).text
    assert call_id not in export and kept in export
    after = (await client.get("/api/v1/analytics/summary", params=analytics, headers=owner.headers)).json()
    assert after["total_calls"] == 1 and after["latency_samples"] == before["latency_samples"] // 2
    assert await services.store.stat(key) is None
    assert await services.db[CALL_TURNS].count_documents({"call_id": call_id}) == 0
    erasures = (await client.get("/api/v1/privacy/erasures", headers=owner.headers)).json()
    assert [(e["call_id"], e["scope"], e["reason"], e["objects_deleted"]) for e in erasures] == [
        (call_id, "call", "api", 1)]
    audit = (await client.get("/api/v1/org/audit-log", headers=owner.headers)).json()
    assert any(a["action"] == "call.deleted" and a["target_id"] == call_id for a in audit)
    # Deleting again: nothing there.
    assert (await client.delete(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 404

    # A voice server uploads its spooled copy late: the object is deleted and the call does not come back.
    late_key = f"{owner.org_id}/{call_id}/late.wav"
    await services.store.put_bytes(late_key, b"RIFF" + b"\0" * 64, "audio/wav")
    await post_events(client, [{"type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": call_id,
                                "at": "2030-01-15T10:05:00+00:00", "bucket": services.store.bucket, "key": late_key,
                                "size_bytes": 68, "duration_s": 1.0, "sample_rate": 16000, "channels": 2}])
    await services.processor.run_once()
    assert await services.store.stat(late_key) is None
    assert (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 404
    assert await _list_ids(client, owner) == [kept]


async def test_delete_refused_while_live_and_in_other_orgs(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "live")
    other = await register(client, "other")
    call_id, events = call_events(owner.org_id)
    await post_events(client, events[:-1])  # started and turns, not ended
    resp = await client.delete(f"/api/v1/calls/{call_id}", headers=owner.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "call_live"
    assert (await client.delete(f"/api/v1/calls/{call_id}", headers=other.headers)).status_code == 404
    await post_events(client, events[-1:])
    assert (await client.delete(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 204
    assert await services.db[ERASED_CALLS].find_one({"_id": call_id}) is not None


async def test_forget_number(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "forget")
    admin = await add_member(client, owner, "admin")
    member = await add_member(client, owner, "member")
    number = f"+44207{uuid.uuid4().int % 10**7:07d}"
    first, key1 = await _call_with_recording(client, services, owner, number=number)
    second, key2 = await _call_with_recording(client, services, owner, at="2030-01-16T10:00:00+00:00", number=number)
    unrelated, _ = await _call_with_recording(client, services, owner)
    await services.db[CONTACTS].insert_many([
        {"_id": uuid.uuid4().hex, "org_id": owner.org_id, "campaign_id": "c1", "phone": number},
        {"_id": uuid.uuid4().hex, "org_id": owner.org_id, "campaign_id": "c2", "phone": number},
        {"_id": uuid.uuid4().hex, "org_id": owner.org_id, "campaign_id": "c1", "phone": "+14155550111"},
    ])
    body = {"number": number}
    assert (await client.post("/api/v1/privacy/forget-number", json=body, headers=member.headers)).status_code == 403
    bad = await client.post("/api/v1/privacy/forget-number", json={"number": "0207 123"}, headers=admin.headers)
    assert bad.status_code == 422
    resp = await client.post("/api/v1/privacy/forget-number", json=body, headers=admin.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"calls": 2, "contacts": 2}
    assert await _list_ids(client, owner) == [unrelated]
    for call_id in (first, second):
        assert (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 404
    assert await services.store.stat(key1) is None and await services.store.stat(key2) is None
    assert await services.db[CONTACTS].count_documents({"org_id": owner.org_id, "phone": number}) == 0
    assert await services.db[CONTACTS].count_documents({"org_id": owner.org_id}) == 1
    audit = (await client.get("/api/v1/org/audit-log", headers=owner.headers)).json()
    entry = next(a for a in audit if a["action"] == "data_subject.forgotten")
    assert entry["detail"] == {"calls": 2, "contacts": 2}
    assert number not in json.dumps(audit) and number[1:] not in json.dumps(audit)


async def test_retention_settings_are_validated(client: httpx.AsyncClient) -> None:
    owner = await register(client, "ret")
    member = await add_member(client, owner, "member")
    url = "/api/v1/privacy/retention"
    assert (await client.get(url, headers=owner.headers)).json() == {
        "recordings_days": None, "transcripts_days": None, "metadata_days": None}
    for bad in ({"recordings_days": 0}, {"transcripts_days": -3}, {"metadata_days": 3651}, {"recordings_days": "x"},
                {"recordings_days": 40, "metadata_days": 30}, {"keep": 5}):
        resp = await client.put(url, json=bad, headers=owner.headers)
        assert resp.status_code == 422, bad
    good = {"recordings_days": 30, "transcripts_days": 90, "metadata_days": 365}
    assert (await client.put(url, json=good, headers=member.headers)).status_code == 403
    assert (await client.put(url, json=good, headers=owner.headers)).json() == good
    assert (await client.get(url, headers=member.headers)).json() == good


async def test_housekeeping_applies_retention_idempotently(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "sweep")
    old, old_key = await _call_with_recording(client, services, owner, at="2030-01-01T10:00:00+00:00")
    mid, mid_key = await _call_with_recording(client, services, owner, at="2030-01-14T10:00:00+00:00")
    new, new_key = await _call_with_recording(client, services, owner, at="2030-01-16T10:00:00+00:00")
    settings = {"recordings_days": 2, "transcripts_days": 10, "metadata_days": 20}
    assert (await client.put("/api/v1/privacy/retention", json=settings, headers=owner.headers)).status_code == 200
    # A small batch: the work takes several rounds, each carrying on where the last stopped.
    sweeper = RetentionService(services.db, ErasureQueue(services.db, services.events_accepted), services.audit,
                               batch=1)
    now = datetime(2030, 1, 17, tzinfo=UTC)
    for _ in range(4):
        await sweeper.sweep(now)
        await services.processor.run_once()
    details = {c: (await client.get(f"/api/v1/calls/{c}", headers=owner.headers)).json() for c in (old, mid, new)}
    assert not details[old]["has_recording"] and details[old]["turns"] == []
    assert not details[mid]["has_recording"] and len(details[mid]["turns"]) == 2
    assert details[new]["has_recording"] and len(details[new]["turns"]) == 2
    assert await services.store.stat(old_key) is None and await services.store.stat(mid_key) is None
    assert await services.store.stat(new_key) is not None
    listed = {c["id"]: c["has_recording"] for c in
              (await client.get("/api/v1/calls", headers=owner.headers)).json()["items"]}
    assert listed == {old: False, mid: False, new: True}

    def scopes(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return sorted((r["call_id"], r["scope"]) for r in records)

    first = (await client.get("/api/v1/privacy/erasures", headers=owner.headers)).json()
    assert scopes(first) == sorted([(old, "recording"), (old, "transcript"), (mid, "recording")])
    assert all(r["reason"] == "retention" for r in first)
    # Another round changes nothing.
    assert await sweeper.sweep(now) == 0
    await services.processor.run_once()
    assert scopes((await client.get("/api/v1/privacy/erasures", headers=owner.headers)).json()) == scopes(first)
    # Later the oldest call's metadata expires too.
    await sweeper.sweep(datetime(2030, 1, 25, tzinfo=UTC))
    await services.processor.run_once()
    assert set(await _list_ids(client, owner)) == {mid, new}
    assert (await client.get(f"/api/v1/calls/{old}", headers=owner.headers)).status_code == 404
