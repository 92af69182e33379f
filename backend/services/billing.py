"""Cost per call from its recorded usage and the price book, the organisation's monthly spend, and its budget.

A call's cost is computed when it ends (its usage is final then) and added once to the month's spend (a unique
per-call marker makes a re-applied end count once). At the budget the dialer pauses the organisation's campaigns
with a visible reason, and inbound calls follow the organisation's setting (answer, or a message and hang up)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from backend.db.collections import ORG_BILLING, ORG_SPEND, Db
from backend.db.group_increment import GroupIncrement
from backend.db.group_insert import GroupInserter
from backend.db.ids import utcnow
from backend.models.billing import BillingOut, BudgetSettings, CostAnalytics, CostBreakdown, PriceBook
from backend.security.permissions import Principal
from backend.services.audit import AuditLog


def month_of(at: datetime) -> str:
    return at.strftime("%Y-%m")


def call_cost(book: PriceBook, call: dict[str, Any], model: str | None = None) -> CostBreakdown:
    """From a call's carrier, direction, duration and usage units (core/call_events.py UsageUnits)."""
    usage = call.get("usage") or {}
    minutes = float(call.get("duration_s") or 0) / 60
    per_min = book.telephony_per_min.get(call.get("carrier") or "", {}).get(call.get("direction") or "", 0.0)
    llm = book.llm_by_model.get(model or "", book.llm_default)
    parts = {
        "telephony": minutes * per_min,
        "stt": float(usage.get("stt_audio_s") or 0) * book.stt_per_audio_s,
        "llm": (int(usage.get("llm_prompt_tokens") or 0) * llm.input_per_1k
                + int(usage.get("llm_completion_tokens") or 0) * llm.output_per_1k) / 1000,
        "tts": int(usage.get("tts_characters") or 0) * book.tts_per_1k_chars / 1000,
        "compute": minutes / 60 * book.compute_per_hour,
    }
    rounded = {k: round(v, 6) for k, v in parts.items()}
    return CostBreakdown(currency=book.currency, total=round(sum(parts.values()), 6), **rounded)


class BillingService:
    def __init__(self, db: Db, platform_prices: str, audit: AuditLog) -> None:
        self._db = db
        self._platform = PriceBook.model_validate(json.loads(platform_prices)) if platform_prices else PriceBook()
        self._audit = audit
        # Calls ending together (the outbox applier ends several at once) share the marker insert and the $inc.
        self._markers = GroupInserter(db, ORG_SPEND)
        self._totals = GroupIncrement(db, ORG_SPEND)

    async def _doc(self, org_id: str) -> dict[str, Any]:
        return await self._db[ORG_BILLING].find_one({"_id": org_id}) or {}

    async def price_book(self, org_id: str) -> PriceBook:
        overrides = (await self._doc(org_id)).get("price_book") or {}
        return PriceBook.model_validate({**self._platform.model_dump(), **overrides})

    async def budget(self, org_id: str) -> BudgetSettings:
        return BudgetSettings.model_validate((await self._doc(org_id)).get("budget") or {})

    async def spent(self, org_id: str, month: str) -> float:
        doc = await self._db[ORG_SPEND].find_one({"_id": f"{org_id}:{month}"})
        return float((doc or {}).get("total") or 0.0)

    async def over_budget(self, org_id: str) -> tuple[bool, str]:
        budget = await self.budget(org_id)
        if budget.monthly_budget is None:
            return False, ""
        spent = await self.spent(org_id, month_of(utcnow()))
        return spent >= budget.monthly_budget, f"monthly budget reached: spent {spent:.2f} of {budget.monthly_budget:.2f}"

    async def get(self, principal: Principal) -> BillingOut:
        org, month = principal.org_id, month_of(utcnow())
        budget = await self.budget(org)
        spent = await self.spent(org, month)
        return BillingOut(price_book=await self.price_book(org), budget=budget, month=month,
                          spent_this_month=round(spent, 6),
                          over_budget=budget.monthly_budget is not None and spent >= budget.monthly_budget)

    async def set_price_book(self, principal: Principal, book: PriceBook) -> BillingOut:
        await self._db[ORG_BILLING].update_one({"_id": principal.org_id},
                                               {"$set": {"price_book": book.model_dump(mode="json")}}, upsert=True)
        await self._audit.record(principal.org_id, principal, "price_book.updated", "organization", principal.org_id)
        return await self.get(principal)

    async def set_budget(self, principal: Principal, budget: BudgetSettings) -> BillingOut:
        await self._db[ORG_BILLING].update_one({"_id": principal.org_id},
                                               {"$set": {"budget": budget.model_dump(mode="json")}}, upsert=True)
        await self._audit.record(principal.org_id, principal, "budget.updated", "organization", principal.org_id,
                                 {"monthly_budget": budget.monthly_budget})
        return await self.get(principal)

    async def costs(self, principal: Principal, since: date, until: date) -> CostAnalytics:
        """Cost per day, agent and campaign, and per minute of call, from the costed calls (one row per call)."""
        per_day: dict[str, float] = {}
        per_agent: dict[str, float] = {}
        per_campaign: dict[str, float] = {}
        total = minutes = 0.0
        async for doc in self._db[ORG_SPEND].find({"org_id": principal.org_id,
                                                   "day": {"$gte": since.isoformat(), "$lte": until.isoformat()}}):
            cost = float(doc.get("cost") or 0)
            total += cost
            minutes += float(doc.get("duration_s") or 0) / 60
            per_day[doc["day"]] = per_day.get(doc["day"], 0) + cost
            if doc.get("agent_id"):
                per_agent[doc["agent_id"]] = per_agent.get(doc["agent_id"], 0) + cost
            if doc.get("campaign_id"):
                per_campaign[doc["campaign_id"]] = per_campaign.get(doc["campaign_id"], 0) + cost
        book = await self.price_book(principal.org_id)
        return CostAnalytics(
            currency=book.currency, since=since, until=until, total=round(total, 6),
            cost_per_minute=round(total / minutes, 6) if minutes else None,
            per_day={k: round(v, 6) for k, v in sorted(per_day.items())},
            per_agent={k: round(v, 6) for k, v in per_agent.items()},
            per_campaign={k: round(v, 6) for k, v in per_campaign.items()})

    async def on_call_ended(self, org_id: str, call: dict[str, Any]) -> CostBreakdown:
        """The ended call's cost, added once to its month's spend."""
        cost = call_cost(await self.price_book(org_id), call)
        month = month_of(utcnow())
        marker = {
            "_id": f"call:{call['id']}", "org_id": org_id, "month": month, "cost": cost.total,
            "day": str(call.get("created_at") or utcnow().isoformat())[:10], "agent_id": call.get("agent_id"),
            "campaign_id": call.get("campaign_id"), "duration_s": float(call.get("duration_s") or 0)}
        if await self._markers.insert([marker]):
            return cost  # counted before (a re-applied end)
        await self._totals.inc(f"{org_id}:{month}", {"total": cost.total})
        return cost
