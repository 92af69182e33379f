"""Time-dependent behaviour with the clock under the test's control: retry delays and calling windows.

A second backend process-in-the-test runs with a ManualClock and its own in-process dialer; the carrier's callbacks
go to it, so the finaliser (retry scheduling) and the dialer (due times, windows) read the same clock. Real waits
(carrier, callbacks) still happen in real time."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from campaign_testkit import (
    InProcessServer,
    Org,
    all_contacts,
    calls_to,
    campaign_body,
    contact_number,
    create_campaign,
    human,
    ok,
    provision_org,
    refusing,
    start_backend,
    wait_campaign,
)
from pymongo import AsyncMongoClient

from backend.campaigns.clock import ManualClock
from backend.campaigns.collections import ATTEMPTS

pytestmark = pytest.mark.timeout(180)
MONDAY_8AM_NEW_YORK = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # EST = UTC-5


@pytest.fixture(scope="module")
async def timed(campaign_stack: Any) -> AsyncIterator[tuple[InProcessServer, ManualClock]]:
    clock = ManualClock(MONDAY_8AM_NEW_YORK)
    server = await start_backend(voice_url=campaign_stack.voice_url, clock=clock, mongodb_db=campaign_stack.db_name,
                                 dialer_enabled=True)
    try:
        yield server, clock
    finally:
        await server.stop()


async def settle(carrier: Any, numbers: set[str], count: int, limit_s: float = 30) -> None:
    """Until the carrier has seen `count` calls to these numbers and all of them are over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        calls = calls_to(carrier, numbers)
        if len(calls) >= count and all(c.over for c in calls):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} finished calls, carrier has {len(calls_to(carrier, numbers))}")


async def contact(http: Any, org: Org, cid: str, number: str) -> dict[str, Any]:
    return (await all_contacts(http, org, cid))[number]


async def finalized(http: Any, org: Org, cid: str, number: str, dials: int, limit_s: float = 30) -> dict[str, Any]:
    """Until the contact's `dials`-th call is over and its outcome recorded (so the next due time is set)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        found = await contact(http, org, cid, number)
        if found["dials"] >= dials and found["status"] != "dialing":
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{number}: call {dials} not finalised: {found}")


async def test_retries_happen_at_the_configured_delays(campaign_stack: Any, timed: Any) -> None:
    s = campaign_stack
    server, clock = timed
    clock.set(MONDAY_8AM_NEW_YORK)
    org = await provision_org(s.http, server.url, s.carrier, carriers=("twilio",))
    busy, silent, person = contact_number("US"), contact_number("US"), contact_number("US")
    s.carrier.callees.update({busy: refusing("busy"), silent: refusing("no-answer"), person: human(0.3)})
    cid = await create_campaign(s.http, org, [busy, silent, person], retry={
        "busy": {"max_attempts": 3, "delays_s": [600, 1800]},
        "no_answer": {"max_attempts": 2, "delays_s": [120]},
        "failed": {"max_attempts": 1, "delays_s": [0]}, "voicemail": {"max_attempts": 1, "delays_s": [0]}})
    t0 = clock.now()
    for number in (busy, silent, person):
        await finalized(s.http, org, cid, number, 1)
    first = await contact(s.http, org, cid, busy)
    assert first["status"] == "pending" and first["dials"] == 1
    assert datetime.fromisoformat(first["next_attempt_at"]) == t0 + timedelta(seconds=600)
    assert (await contact(s.http, org, cid, person))["status"] == "completed"

    async def calls(number: str) -> int:
        await asyncio.sleep(1.0)  # several dialer polls
        return len(calls_to(s.carrier, {number}))

    clock.advance(119)
    assert await calls(silent) == 1  # one second early: nothing
    clock.advance(1)
    await finalized(s.http, org, cid, silent, 2)
    clock.advance(600 - 120 - 1)
    assert await calls(busy) == 1
    clock.advance(1)
    await finalized(s.http, org, cid, busy, 2)
    clock.advance(1799)
    assert await calls(busy) == 2
    clock.advance(1)
    await finalized(s.http, org, cid, busy, 3)
    await wait_campaign(s.http, org, cid, limit_s=30)
    clock.advance(86400)
    assert await calls(busy) == 3  # max attempts reached: never again
    final = await all_contacts(s.http, org, cid)
    assert (final[busy]["status"], final[busy]["dials"]) == ("busy", 3)
    assert (final[silent]["status"], final[silent]["dials"]) == ("no_answer", 2)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"], tz_aware=True)
    try:
        claimed = sorted([d["claimed_at"] async for d in client[s.db_name][ATTEMPTS].find(
            {"campaign_id": cid, "to_number": busy}, {"claimed_at": 1})])
    finally:
        await client.close()
    assert [(b - a).total_seconds() for a, b in zip(claimed, claimed[1:], strict=False)] == [600.0, 1800.0]


async def test_contacts_outside_their_window_wait(campaign_stack: Any, timed: Any) -> None:
    s = campaign_stack
    server, clock = timed
    clock.set(MONDAY_8AM_NEW_YORK)  # 08:00 in New York, 13:00 in London
    org = await provision_org(s.http, server.url, s.carrier, carriers=("twilio",))
    new_york = [contact_number("US") for _ in range(2)]
    london = contact_number("US")
    for number in [*new_york, london]:
        s.carrier.callees[number] = human(0.3)
    weekdays = {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
    body = campaign_body(org, windows={"timezone": "America/New_York", "use_contact_timezone": True,
                                       "days": weekdays})
    campaign = await ok(await s.http.post(f"{server.url}/api/v1/campaigns", headers=org.headers, json=body))
    cid = campaign["id"]
    rows = "phone,name,timezone\n" + "".join(f"{n},NY,\n" for n in new_york) + f"{london},UK,Europe/London\n"
    await ok(await s.http.post(f"{server.url}/api/v1/campaigns/{cid}/contacts", headers=org.headers,
                               files={"file": ("c.csv", rows.encode(), "text/csv")}))
    await ok(await s.http.post(f"{server.url}/api/v1/campaigns/{cid}/start", headers=org.headers))
    await settle(s.carrier, {london}, 1)  # open in its own timezone: dialled at once
    await asyncio.sleep(1.5)
    assert calls_to(s.carrier, set(new_york)) == []  # 08:00 in New York: waiting
    progress = await ok(await s.http.get(f"{server.url}/api/v1/campaigns/{cid}/progress", headers=org.headers))
    assert progress["status"] == "running" and progress["by_status"]["pending"] == 2
    clock.advance(59 * 60)
    await asyncio.sleep(1.0)
    assert calls_to(s.carrier, set(new_york)) == []  # 08:59
    clock.advance(60)  # 09:00
    await settle(s.carrier, set(new_york), 2)
    await wait_campaign(s.http, org, cid, limit_s=30)
    # Saturday: closed all day, whatever the hour.
    clock.set(datetime(2026, 11, 28, 16, 0, tzinfo=UTC))
    late = contact_number("US")
    s.carrier.callees[late] = human(0.3)
    cid2 = await create_campaign(s.http, org, [late], windows={"timezone": "America/New_York", "days": weekdays})
    await asyncio.sleep(1.5)
    assert calls_to(s.carrier, {late}) == []
    await ok(await s.http.post(f"{server.url}/api/v1/campaigns/{cid2}/cancel", headers=org.headers))
