"""Campaigns end to end: the backend (real HTTP), dialers as real subprocesses, the real voice server, and the fake
carrier (a Twilio/Vobiz REST test double) whose own log is the evidence for "dialled once" and "caps held"."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
from collections import Counter
from typing import Any

import pytest
from campaign_testkit import (
    all_contacts,
    calls_to,
    contact_number,
    create_campaign,
    dialers,
    human,
    machine,
    ok,
    provision_org,
    refusing,
    start_dialer,
    until,
    wait_campaign,
)
from pymongo import AsyncMongoClient

from backend.campaigns.collections import ATTEMPTS, LEASES, MARKS

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def db(campaign_stack: Any) -> Any:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"], tz_aware=True)
    yield client[campaign_stack.db_name]
    await client.close()


async def read_sse(http: Any, url: str, headers: dict[str, str], events: list[dict[str, Any]]) -> None:
    async with http.stream("GET", url, headers=headers, timeout=None) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append({"event": kind, "data": json.loads(line[6:])})
                if kind == "end":
                    return


async def test_fifty_contacts_mixed_outcomes(campaign_stack: Any, db: Any) -> None:
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier)
    plan: dict[str, tuple[Any, str, int]] = {}  # number -> (callee, final status, dials)
    for i in range(18):
        plan[contact_number("US" if i % 2 else "IN")] = (human(0.8), "completed", 1)
    for _ in range(7):
        plan[contact_number("US")] = (refusing("busy"), "busy", 2)  # busy: 2 attempts
    for _ in range(8):
        plan[contact_number("IN")] = (refusing("no-answer"), "no_answer", 1)
    for i in range(6):
        plan[contact_number("US" if i % 2 else "IN")] = (machine(), "voicemail", 1)
    for _ in range(5):
        plan[contact_number("US")] = (refusing("failed"), "failed", 2)  # failed: 2 attempts
    dnc_api = [contact_number("US") for _ in range(3)]
    dnc_csv = [contact_number("IN") for _ in range(3)]
    for number in dnc_api + dnc_csv:
        plan[number] = (human(), "dnc", 0)
    assert len(plan) == 50
    for number, (callee, _, _) in plan.items():
        s.carrier.callees[number] = callee

    message = "Hi, this is Acme about your renewal. Please call us back at 555 0100."
    cid = await create_campaign(
        s.http, org, list(plan), start=False, max_concurrent_calls=4, calls_per_second=20,
        retry={"busy": {"max_attempts": 2, "delays_s": [0]}, "no_answer": {"max_attempts": 1, "delays_s": [0]},
               "failed": {"max_attempts": 2, "delays_s": [0]}, "voicemail": {"max_attempts": 1, "delays_s": [0]}},
        voicemail={"detect": True, "action": "leave_message", "message": message})
    # Listed after the upload: the dialer checks the list when it dials, not when contacts are imported.
    for number in dnc_api:
        await ok(await s.http.post(f"{s.backend_url}/api/v1/dnc", headers=org.headers,
                                   json={"phone": number, "reason": "asked not to be called"}), 201)
    dnc_file = ("Phone Number,Reason\n" + "".join(f"{n},complaint\n" for n in dnc_csv)).encode()
    report = await ok(await s.http.post(f"{s.backend_url}/api/v1/dnc/import", headers=org.headers,
                                        files={"file": ("dnc.csv", dnc_file, "text/csv")}), 201)
    assert report["imported"] == 3
    await ok(await s.http.post(f"{s.backend_url}/api/v1/campaigns/{cid}/start", headers=org.headers))

    events: list[dict[str, Any]] = []
    sse = asyncio.create_task(read_sse(s.http, f"{s.backend_url}/api/v1/campaigns/{cid}/events", org.headers, events))
    async with dialers(1, s.db_name, s.backend_url, s.voice_url, s.log_dir) as procs:
        try:
            progress = await wait_campaign(s.http, org, cid, limit_s=150)
        except AssertionError:
            print(procs[0].tail(80))
            raise
    await asyncio.wait_for(sse, 20)

    contacts = await all_contacts(s.http, org, cid)
    calls = calls_to(s.carrier, set(plan))
    per_number = Counter(c.to_number for c in calls)
    finals = {d["contact_id"] + str(d["attempt"]): d async for d in db[MARKS].find({"campaign_id": cid,
                                                                                  "kind": "final"})}
    for number, (_, status, dials) in plan.items():
        contact = contacts[number]
        assert (contact["status"], contact["dials"]) == (status, dials), (number, contact, [
            (v["outcome"], v["detail"]) for k, v in finals.items() if k.startswith(contact["id"])])
        assert per_number[number] == dials, (number, per_number[number])
    assert not any(c.to_number in set(dnc_api + dnc_csv) for c in calls)
    # Voicemail: the machine was detected and the campaign's message was left (Twilio <Say> / Vobiz transfer).
    voicemail = [c for c in calls if plan[c.to_number][1] == "voicemail"]
    assert voicemail and all(c.spoken_message == message for c in voicemail)
    assert {c.carrier for c in voicemail} == {"twilio", "vobiz"}
    # Local presence: US contacts from the Twilio number, Indian ones from the Vobiz number.
    assert all((c.carrier == "twilio") == c.to_number.startswith("+1") for c in calls)
    assert s.carrier.max_concurrent(calls) <= 4
    assert progress["done"] == 50 and progress["by_status"] == {"busy": 7, "completed": 18, "dnc": 6, "failed": 5,
                                                                "no_answer": 8, "voicemail": 6}
    assert progress["dials"] == sum(d for _, _, d in plan.values())
    # The event stream saw the campaign move and end.
    assert events[-1]["event"] == "end" and events[-1]["data"]["status"] == "completed"
    assert len([e for e in events if e["event"] == "progress"]) >= 3
    # The report: one row per contact, with every attempt's outcome.
    text = await ok(await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}/report.csv", headers=org.headers))
    rows = {r["phone"].lstrip("'"): r for r in csv.DictReader(io.StringIO(text))}
    assert len(rows) == 50
    busy_number = next(n for n, p in plan.items() if p[1] == "busy")
    assert rows[busy_number]["outcomes"] == "busy;busy" and rows[busy_number]["first_name"].startswith("Person")
    # Calls that never connected reach the call log with their reason.
    no_answer = next(n for n, p in plan.items() if p[1] == "no_answer")
    call_id = contacts[no_answer]["last_call_id"]
    deadline = time.monotonic() + 15
    while True:
        detail = await ok(await s.http.get(f"{s.backend_url}/api/v1/calls/{call_id}", headers=org.headers))
        if detail["status"] == "no_answer" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert detail["status"] == "no_answer" and detail["campaign_id"] == cid
    assert await db[LEASES].count_documents({"campaign_id": cid}) == 0


async def test_two_dialers_no_double_dial_caps_hold(campaign_stack: Any, db: Any) -> None:
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",))
    await ok(await s.http.put(f"{s.backend_url}/api/v1/campaign-settings", headers=org.headers,
                              json={"max_concurrent_calls": 4}))
    groups = [[contact_number("US") for _ in range(15)] for _ in range(2)]
    for number in groups[0] + groups[1]:
        s.carrier.callees[number] = human(0.7)
    async with dialers(2, s.db_name, s.backend_url, s.voice_url, s.log_dir) as procs:
        await asyncio.sleep(1.0)  # both dialers polling before there is anything to dial
        ids = [await create_campaign(s.http, org, numbers, max_concurrent_calls=3, calls_per_second=20)
               for numbers in groups]
        try:
            for cid in ids:
                await wait_campaign(s.http, org, cid, limit_s=150)
        except AssertionError:
            print(procs[0].tail(40), procs[1].tail(40))
            raise
    all_numbers = set(groups[0] + groups[1])
    calls = calls_to(s.carrier, all_numbers)
    assert Counter(c.to_number for c in calls) == dict.fromkeys(all_numbers, 1)  # every contact dialled exactly once
    for numbers in groups:  # the campaign cap, from the carrier's own log
        assert s.carrier.max_concurrent(calls_to(s.carrier, set(numbers))) <= 3
    assert s.carrier.max_concurrent(calls) <= 4  # the organisation cap across both campaigns
    owners = {doc["owner"] async for doc in db[ATTEMPTS].find({"campaign_id": {"$in": ids}}, {"owner": 1})}
    assert len(owners) == 2, owners  # both dialers took part
    for cid in ids:
        contacts = await all_contacts(s.http, org, cid)
        assert {c["status"] for c in contacts.values()} == {"completed"}


async def test_killed_dialer_claims_recovered_without_double_dial(campaign_stack: Any, db: Any) -> None:
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",))
    numbers = [contact_number("US") for _ in range(16)]
    for number in numbers:
        s.carrier.callees[number] = human(2.5)
    cid = await create_campaign(s.http, org, numbers, max_concurrent_calls=8, calls_per_second=2)
    # Dialer A holds each claim 2 s before dialling: when it is killed it has calls in progress AND unsent claims.
    a = start_dialer(s.db_name, s.backend_url, s.voice_url, s.log_dir, DIALER_FAULT_PAUSE_AFTER_CLAIM_S="2",
                     DIALER_ID="dialer-A")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            placed = await db[MARKS].count_documents({"campaign_id": cid, "kind": "placed"})
            leases = [d async for d in db[LEASES].find({"campaign_id": cid})]
            unsent = [d for d in leases if await db[MARKS].find_one({"_id": f"{d['attempt_id']}:fate"}) is None]
            if placed >= 2 and len(unsent) >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"dialer A never held calls and claims at once:\n{a.tail()}")
        a.kill()
        unsent_ids = {d["attempt_id"] for d in unsent}
    finally:
        a.stop()
    b = start_dialer(s.db_name, s.backend_url, s.voice_url, s.log_dir)
    try:
        await wait_campaign(s.http, org, cid, limit_s=150)
    except AssertionError:
        print(b.tail(60))
        raise
    finally:
        b.stop()
    calls = calls_to(s.carrier, set(numbers))
    assert Counter(c.to_number for c in calls) == dict.fromkeys(numbers, 1)  # nobody dialled twice
    contacts = await all_contacts(s.http, org, cid)
    assert {c["status"] for c in contacts.values()} == {"completed"}
    finals = {d["_id"].rsplit(":", 1)[0]: d async for d in db[MARKS].find({"campaign_id": cid, "kind": "final"})}
    # A's unsent claims were given up by B (the contacts were then dialled by B) ...
    recovered = [aid for aid in unsent_ids if aid in finals and finals[aid]["outcome"] == "not_dialed"]
    assert recovered, (unsent_ids, {k: v["outcome"] for k, v in finals.items()})
    # ... and A's calls already in progress finished normally through the carrier's callbacks.
    placed_by_a = [d async for d in db[MARKS].find({"campaign_id": cid, "kind": "placed", "owner": "dialer-A"})]
    assert any(finals[d["attempt_id"]]["outcome"] == "completed" for d in placed_by_a)
    assert await db[LEASES].count_documents({"campaign_id": cid}) == 0


async def test_pause_resume_cancel_take_effect_promptly(campaign_stack: Any) -> None:
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",))
    numbers = [contact_number("US") for _ in range(30)]
    for number in numbers:
        s.carrier.callees[number] = human(1.0)
    cid = await create_campaign(s.http, org, numbers, max_concurrent_calls=2, calls_per_second=10)
    url = f"{s.backend_url}/api/v1/campaigns/{cid}"
    async with dialers(1, s.db_name, s.backend_url, s.voice_url, s.log_dir):
        await until(lambda: len(calls_to(s.carrier, set(numbers))) >= 2)
        await ok(await s.http.post(f"{url}/pause", headers=org.headers))
        paused_at = len(calls_to(s.carrier, set(numbers)))
        await asyncio.sleep(2.5)  # calls in progress end; nothing new is dialled
        assert len(calls_to(s.carrier, set(numbers))) <= paused_at + 1  # at most one dial already past its check
        frozen = len(calls_to(s.carrier, set(numbers)))
        progress = await ok(await s.http.get(f"{url}/progress", headers=org.headers))
        assert progress["status"] == "paused" and progress["live_calls"] == 0
        await ok(await s.http.post(f"{url}/resume", headers=org.headers))
        await until(lambda: len(calls_to(s.carrier, set(numbers))) >= frozen + 2)
        await ok(await s.http.post(f"{url}/cancel", headers=org.headers))
        canceled_at = len(calls_to(s.carrier, set(numbers)))
        await asyncio.sleep(2.5)
        assert len(calls_to(s.carrier, set(numbers))) <= canceled_at + 1
    progress = await wait_campaign(s.http, org, cid, status="canceled", limit_s=30)
    dialled = len(calls_to(s.carrier, set(numbers)))
    assert progress["by_status"].get("completed", 0) == dialled
    assert progress["by_status"]["canceled"] == 30 - dialled
    # A finished campaign takes no more contacts and cannot be restarted.
    again = await s.http.post(f"{url}/resume", headers=org.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
