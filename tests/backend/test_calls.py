"""Calls: idempotent event ingestion, the list (filters, search, cursor pagination across read-model pages),
detail, recordings (presigned URL that expires, streaming with Range), CSV export neutralisation."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from backend_testkit import call_events, create_agent, post_events, register, service_headers

from backend.db.collections import CALL_TURNS, OUTBOX, OUTBOX_DEFERRED
from backend.services.call_log import PAGE_SIZE
from backend.services.container import Services


async def test_event_ingestion_is_idempotent(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "idem")
    agent = await create_agent(client, owner)
    call_id, events = call_events(owner.org_id, agent_id=agent["id"], turns=4)
    first = await post_events(client, events)
    assert first == {"accepted": 6, "duplicates": 0}
    # The same batch again, then a batch that repeats some events and adds one: only the new one counts.
    again = await post_events(client, events)
    assert again == {"accepted": 0, "duplicates": 6}
    extra = {"type": "call.tool", "event_id": uuid.uuid4().hex, "call_id": call_id, "name": "lookup", "ok": True,
             "duration_ms": 12.5, "at": "2030-01-15T10:00:30+00:00"}
    mixed = await post_events(client, [events[1], events[2], extra, extra])
    assert mixed == {"accepted": 1, "duplicates": 3}
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert [t["turn_index"] for t in detail["turns"]] == [0, 1, 2, 3]
    assert [t["name"] for t in detail["tools"]] == ["lookup"]
    assert detail["agent_version"] == 1 and detail["agent_name"] == "Agent"
    assert detail["status"] == "completed" and detail["end_reason"] == "caller_hangup"
    assert detail["usage"]["llm_prompt_tokens"] == 100 and detail["duration_s"] == 42.0
    assert detail["turns"][1]["latency"]["voice_to_voice_ms"] == 601.0
    assert await services.db[CALL_TURNS].count_documents({"call_id": call_id}) == 4
    page = (await client.get("/api/v1/calls", headers=owner.headers)).json()
    assert [c["id"] for c in page["items"]] == [call_id]


async def test_concurrent_retries_store_each_event_once(client: httpx.AsyncClient) -> None:
    owner = await register(client, "race")
    call_id, events = call_events(owner.org_id, turns=6)
    acks = await asyncio.gather(*(post_events(client, events) for _ in range(4)))
    assert sum(a["accepted"] for a in acks) == len(events)
    assert sum(a["duplicates"] for a in acks) == 3 * len(events)
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert [t["turn_index"] for t in detail["turns"]] == list(range(6))


async def test_events_before_their_call_wait_and_apply(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "order")
    call_id, events = call_events(owner.org_id, turns=2)
    started, rest = events[0], events[1:]
    ack = await post_events(client, rest)  # turns and end arrive first (a retry after an outage, say)
    assert ack["accepted"] == len(rest)
    assert (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).status_code == 404
    # They wait apart from the outbox, whose reads then need no filter.
    assert await services.db[OUTBOX].count_documents({"call_id": call_id}) == 0
    assert await services.db[OUTBOX_DEFERRED].count_documents({"call_id": call_id}) == len(rest)
    deferred = await services.db[OUTBOX_DEFERRED].find_one({"call_id": call_id})
    assert deferred is not None and deferred["retry_at"] is not None and deferred["deferrals"] >= 1
    # A retry of a waiting event is a duplicate, not a second copy.
    assert await post_events(client, rest[:1]) == {"accepted": 0, "duplicates": 1}
    await post_events(client, [started])  # applying the start releases the waiting events at once
    await services.processor.run_once()
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail["status"] == "completed" and len(detail["turns"]) == 2
    assert await services.db[OUTBOX].count_documents({"call_id": call_id}) == 0
    assert await services.db[OUTBOX_DEFERRED].count_documents({"call_id": call_id}) == 0


async def test_event_validation(client: httpx.AsyncClient) -> None:
    bad = {"events": [{"type": "call.turn", "event_id": "short", "call_id": "c", "turn_index": -1, "speaker": "x",
                       "text": "hi", "start_ms": 0, "end_ms": 1}]}
    resp = await client.post("/internal/v1/calls/events", json=bad, headers=service_headers())
    assert resp.status_code == 422
    paths = {d["path"] for d in resp.json()["error"]["details"]}
    assert "body.events.0.call.turn.event_id" in paths and "body.events.0.call.turn.turn_index" in paths
    empty = await client.post("/internal/v1/calls/events", json={"events": []}, headers=service_headers())
    assert empty.status_code == 422


async def test_list_filters_search_and_pagination(client: httpx.AsyncClient) -> None:
    owner = await register(client, "list")
    agent_a = await create_agent(client, owner, "A")
    agent_b = await create_agent(client, owner, "B")
    total = PAGE_SIZE + 30  # spans two read-model pages
    batch = []
    ids = []
    start = datetime(2030, 2, 1, tzinfo=UTC)
    for i in range(total):
        call_id = f"call{i:04d}{uuid.uuid4().hex[:8]}"
        ids.append(call_id)
        at = start + timedelta(days=i // 50, minutes=i % 50)
        batch.append({
            "type": "call.started", "event_id": uuid.uuid4().hex, "call_id": call_id, "org_id": owner.org_id,
            "at": at.isoformat(),
            "agent_id": (agent_a if i % 2 else agent_b)["id"], "direction": "outbound" if i % 3 == 0 else "inbound",
            "carrier": "vobiz", "from_number": "+14155550100", "to_number": f"+1415555{i:04d}",
            "campaign_id": "camp-1" if i % 5 == 0 else None,
        })
    await post_events(client, batch)
    _, ended = call_events(owner.org_id, call_id=ids[7], turns=2, end_reason="busy")
    ended[1]["text"] = "I would like to order a Pepperoni pizza"
    await post_events(client, ended[1:])

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/calls", params=params, headers=owner.headers)).json()
        seen.extend(c["id"] for c in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once

    async def ids_for(**params: object) -> list[str]:
        resp = await client.get("/api/v1/calls", params={"limit": 200, **params}, headers=owner.headers)
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in resp.json()["items"]]

    assert set(await ids_for(agent_id=agent_a["id"])) == {c for i, c in enumerate(ids) if i % 2}
    assert set(await ids_for(direction="outbound")) == {c for i, c in enumerate(ids) if i % 3 == 0}
    assert set(await ids_for(campaign_id="camp-1")) == {c for i, c in enumerate(ids) if i % 5 == 0}
    assert await ids_for(status="busy") == [ids[7]]
    assert await ids_for(q="pepperoni") == [ids[7]]
    assert await ids_for(q="no such words") == []
    assert await ids_for(number="5550042") == [ids[42]]
    day2 = await ids_for(since="2030-02-02T00:00:00Z", until="2030-02-03T00:00:00Z")
    assert set(day2) == set(ids[50:100])
    assert (await client.get("/api/v1/calls?cursor=!!notacursor", headers=owner.headers)).status_code == 400
    assert (await client.get("/api/v1/calls?status=exploded", headers=owner.headers)).status_code == 422


async def test_recording_presigned_url_works_then_expires(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "rec")
    call_id, events = call_events(owner.org_id)
    audio = bytes(range(256)) * 40
    key = f"{owner.org_id}/{call_id}.wav"
    await services.store.put_bytes(key, audio, "audio/wav")
    events.append({"type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": call_id, "bucket": "wrong",
                   "key": key, "size_bytes": len(audio), "duration_s": 1.0, "sample_rate": 8000})
    refused = await client.post("/internal/v1/calls/events", json={"events": events}, headers=service_headers())
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["path"] == "body.events.4.bucket"
    events[-1]["bucket"] = services.store.bucket
    await post_events(client, events)
    detail = (await client.get(f"/api/v1/calls/{call_id}", headers=owner.headers)).json()
    assert detail["has_recording"] and detail["recording"]["size_bytes"] == len(audio)

    link = await client.get(f"/api/v1/calls/{call_id}/recording", params={"expires_in": 2}, headers=owner.headers)
    assert link.status_code == 200
    async with httpx.AsyncClient() as outside:  # no credentials: the URL alone grants access, for a while
        fetched = await outside.get(link.json()["url"])
        assert fetched.status_code == 200 and fetched.content == audio
        await asyncio.sleep(3.2)
        expired = await outside.get(link.json()["url"])
        assert expired.status_code == 403


async def test_recording_stream_supports_range(client: httpx.AsyncClient, services: Services) -> None:
    owner = await register(client, "range")
    call_id, events = call_events(owner.org_id)
    audio = bytes(range(256)) * 100
    key = f"{owner.org_id}/{call_id}.wav"
    await services.store.put_bytes(key, audio, "audio/wav")
    events.append({"type": "call.recording", "event_id": uuid.uuid4().hex, "call_id": call_id,
                   "bucket": services.store.bucket, "key": key, "size_bytes": len(audio), "duration_s": 1.0,
                   "sample_rate": 8000})
    await post_events(client, events)
    url = f"/api/v1/calls/{call_id}/recording/audio"
    whole = await client.get(url, headers=owner.headers)
    assert whole.status_code == 200 and whole.content == audio and whole.headers["accept-ranges"] == "bytes"
    part = await client.get(url, headers={**owner.headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == audio[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(audio)}"
    tail = await client.get(url, headers={**owner.headers, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == audio[-10:]
    open_end = await client.get(url, headers={**owner.headers, "Range": f"bytes={len(audio) - 5}-"})
    assert open_end.content == audio[-5:]
    beyond = await client.get(url, headers={**owner.headers, "Range": f"bytes={len(audio)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(audio)}"
    assert (await client.get(url, headers={**owner.headers, "Range": "pages=1-2"})).status_code == 416
    no_recording_id, plain = call_events(owner.org_id)
    await post_events(client, plain)
    assert (await client.get(f"/api/v1/calls/{no_recording_id}/recording", headers=owner.headers)).status_code == 404


async def test_csv_export_neutralises_formulas(client: httpx.AsyncClient) -> None:
    owner = await register(client, "csv")
    agent = await create_agent(client, owner, '=HYPERLINK("http://evil.example","click")')
    for campaign in ("@SUM(A1:A2)", "-2+3", "plain"):
        _, events = call_events(owner.org_id, agent_id=agent["id"], campaign_id=campaign)
        await post_events(client, events)
    resp = await client.get("/api/v1/calls/export.csv", headers=owner.headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 3
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@")), (column, value)
    assert {r["campaign_id"] for r in rows} == {"'@SUM(A1:A2)", "'-2+3", "plain"}
    assert rows[0]["agent_name"] == "'" + '=HYPERLINK("http://evil.example","click")'
    assert rows[0]["from_number"] == "'+14155550100"
    filtered = await client.get("/api/v1/calls/export.csv", params={"campaign_id": "plain"}, headers=owner.headers)
    assert len(list(csv.DictReader(io.StringIO(filtered.text)))) == 1
