"""Cost per call and the monthly budget, against the real backend, dialer and voice server: a price book with
per-organisation overrides (negative prices refused, nothing changed), each ended call costed from its usage into
the call detail, the CSV export and the month's spend; at the budget the dialer pauses the campaign with a visible
reason, and inbound calls get the organisation's over-budget message."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from typing import Any

import pytest
from campaign_testkit import calls_to, contact_number, create_campaign, dialers, human, ok, provision_org

from core.service_auth import mint_service_token

pytestmark = pytest.mark.timeout(180)


async def test_price_book_cost_per_call_and_budget_pause(campaign_stack: Any) -> None:
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",))
    billing = f"{s.backend_url}/api/v1/org/billing"
    defaults = await ok(await s.http.get(billing, headers=org.headers))
    assert defaults["spent_this_month"] == 0 and not defaults["over_budget"]

    book = {**defaults["price_book"], "telephony_per_min": {"twilio": {"inbound": 1.0, "outbound": 30.0}},
            "llm_default": {"input_per_1k": 0.5, "output_per_1k": 1.5}, "compute_per_hour": 6.0}
    bad = await s.http.put(f"{billing}/price-book", headers=org.headers, json={**book, "stt_per_audio_s": -1})
    assert bad.status_code == 422, bad.text
    assert (await ok(await s.http.get(billing, headers=org.headers)))["price_book"] == defaults["price_book"]
    await ok(await s.http.put(f"{billing}/price-book", headers=org.headers, json=book))
    refused = await s.http.put(f"{billing}/budget", headers=org.headers, json={"monthly_budget": -5})
    assert refused.status_code == 422
    await ok(await s.http.put(f"{billing}/budget", headers=org.headers, json={
        "monthly_budget": 0.5, "over_budget_inbound": "message", "over_budget_message": "We are closed today."}))

    numbers = [contact_number("US") for _ in range(6)]
    for number in numbers:
        s.carrier.callees[number] = human(3.0)
    cid = await create_campaign(s.http, org, numbers, max_concurrent_calls=1, calls_per_second=5)
    async with dialers(1, s.db_name, s.backend_url, s.voice_url, s.log_dir):
        for _ in range(240):
            doc = await ok(await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}", headers=org.headers))
            if doc["status"] == "paused":
                break
            await asyncio.sleep(0.5)
    campaign = await ok(await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}", headers=org.headers))
    assert campaign["status"] == "paused" and "monthly budget" in campaign["paused_reason"], campaign
    dialled = calls_to(s.carrier, set(numbers))
    assert 1 <= len(dialled) < len(numbers), len(dialled)  # stopped at the budget, not at the end of the list

    summary = await ok(await s.http.get(billing, headers=org.headers))
    assert summary["over_budget"] and summary["spent_this_month"] >= 0.5, summary
    listed = await ok(await s.http.get(f"{s.backend_url}/api/v1/calls", headers=org.headers,
                                       params={"campaign_id": cid}))
    ended = [c for c in listed["items"] if c["ended_at"]]
    detail = await ok(await s.http.get(f"{s.backend_url}/api/v1/calls/{ended[0]['id']}", headers=org.headers))
    cost = detail["cost"]
    minutes = detail["duration_s"] / 60
    assert cost["telephony"] == pytest.approx(minutes * 30.0, abs=1e-4) and cost["currency"] == "USD", cost
    assert cost["compute"] == pytest.approx(minutes / 60 * 6.0, abs=1e-4)
    assert cost["total"] == pytest.approx(sum(cost[k] for k in ("telephony", "stt", "llm", "tts", "compute")))
    exported = await s.http.get(f"{s.backend_url}/api/v1/calls/export.csv", headers=org.headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    row = next(r for r in rows if r["id"] == ended[0]["id"])
    assert float(row["cost_total"]) == pytest.approx(cost["total"], abs=1e-4), row

    costs = await ok(await s.http.get(f"{s.backend_url}/api/v1/analytics/costs", headers=org.headers))
    assert costs["total"] == pytest.approx(summary["spent_this_month"], abs=1e-4), costs
    assert costs["per_campaign"][cid] == pytest.approx(costs["total"], abs=1e-4)
    assert costs["per_agent"][org.agent_id] == pytest.approx(costs["total"], abs=1e-4)
    assert sum(costs["per_day"].values()) == pytest.approx(costs["total"], abs=1e-4)
    assert costs["cost_per_minute"] >= 30.0, costs  # telephony alone is 30 per minute here
    number = org.numbers["twilio"]
    await ok(await s.http.patch(f"{s.backend_url}/api/v1/phone-numbers/{number['id']}", headers=org.headers,
                                json={"agent_id": org.agent_id}))
    service = {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], 'voice-server')}"}
    inbound = await ok(await s.http.get(f"{s.backend_url}/internal/v1/agents/by-number/{number['number']}",
                                        headers=service))
    assert inbound["over_budget_message"] == "We are closed today.", inbound  # the voice server says it, hangs up


async def test_the_campaign_report_has_each_contacts_extracted_fields(campaign_stack: Any) -> None:
    """The analysis itself is tested with the real LLM in tests/backend/test_call_analysis.py; here a stored analysis
    of a contact's last call (as the analyzer writes it) shows up as that contact's report columns."""
    from pymongo import AsyncMongoClient

    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",))
    number = contact_number("US")
    s.carrier.callees[number] = human(0.5)
    cid = await create_campaign(s.http, org, [number], max_concurrent_calls=1, calls_per_second=5)
    async with dialers(1, s.db_name, s.backend_url, s.voice_url, s.log_dir):
        for _ in range(240):
            progress = await ok(await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}/progress",
                                                 headers=org.headers))
            if progress["status"] == "completed":
                break
            await asyncio.sleep(0.5)
    contacts = await ok(await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}/contacts", headers=org.headers))
    call_id = contacts["items"][0]["last_call_id"]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"], tz_aware=True)
    try:
        await client[s.db_name]["call_analyses"].insert_one({
            "_id": call_id, "org_id": org.org_id, "campaign_id": cid, "status": "done", "success": True,
            "summary": "Booked for Tuesday.", "data": {"appointment_day": "Tuesday", "callback_requested": False}})
    finally:
        await client.close()
    report = await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}/report.csv", headers=org.headers)
    row = next(csv.DictReader(io.StringIO(report.text)))
    assert row["analysis_success"] == "True" and row["analysis_summary"] == "Booked for Tuesday.", row
    assert row["data_appointment_day"] == "Tuesday" and row["data_callback_requested"] == "False", row
