"""The month's spend when calls end together: the outbox applier ends several calls at once and their spend
markers and month total are written in groups (backend/db/group_increment.py); each call must still count exactly
once, a re-applied end (also concurrent with the first) never twice, and the budget must still trip."""

from __future__ import annotations

import asyncio
import uuid

from backend.db.collections import ORG_BILLING, ORG_SPEND
from backend.db.ids import utcnow
from backend.services.billing import month_of
from backend.services.container import Services


def ended_call(i: int) -> dict[str, object]:
    return {"id": f"spend-{uuid.uuid4().hex}", "carrier": "twilio", "direction": "outbound",
            "duration_s": 30.0 + i, "usage": {"llm_prompt_tokens": 100 * (i + 1), "tts_characters": 50 * i}}


async def test_calls_ending_together_count_once_each(services: Services) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    calls = [ended_call(i) for i in range(12)]
    # Every call ends at once, and a third of them are re-applied at the same moment (a retried batch).
    costs = await asyncio.gather(*(services.billing.on_call_ended(org, c) for c in calls + calls[:4]))
    expected = sum(cost.total for cost in costs[:12])
    assert expected > 0
    month = month_of(utcnow())
    assert abs(await services.billing.spent(org, month) - expected) < 1e-6
    assert await services.db[ORG_SPEND].count_documents({"org_id": org}) == 12  # one marker per call

    await asyncio.gather(*(services.billing.on_call_ended(org, c) for c in calls))  # re-applied later: no change
    assert abs(await services.billing.spent(org, month) - expected) < 1e-6


async def test_organisations_ending_calls_together_keep_their_own_totals(services: Services) -> None:
    orgs = [f"org-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    calls = {org: [ended_call(i) for i in range(3 + n)] for n, org in enumerate(orgs)}
    costs = await asyncio.gather(*(services.billing.on_call_ended(org, c) for org in orgs for c in calls[org]))
    month, at = month_of(utcnow()), 0
    for org in orgs:
        mine = costs[at:at + len(calls[org])]
        at += len(calls[org])
        assert abs(await services.billing.spent(org, month) - sum(c.total for c in mine)) < 1e-6


async def test_budget_trips_on_spend_from_calls_ending_together(services: Services) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    calls = [ended_call(i) for i in range(6)]
    await services.db[ORG_BILLING].update_one({"_id": org}, {"$set": {"budget": {"monthly_budget": 0.001}}},
                                              upsert=True)
    assert (await services.billing.over_budget(org))[0] is False
    await asyncio.gather(*(services.billing.on_call_ended(org, c) for c in calls))
    over, reason = await services.billing.over_budget(org)
    assert over and "monthly budget reached" in reason
