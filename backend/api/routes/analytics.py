"""/api/v1/analytics."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import AnalyticsRead, ServicesDep
from backend.api.responses import AUTHENTICATED
from backend.models.analytics import AnalyticsSummary
from backend.models.billing import CostAnalytics
from backend.services.analytics import day_range

router = APIRouter(prefix="/analytics", tags=["analytics"], responses=AUTHENTICATED)


@router.get("/summary")
async def analytics_summary(
    principal: AnalyticsRead, services: ServicesDep,
    since: Annotated[date | None, Query(description="First UTC day; default 29 days before `until`.")] = None,
    until: Annotated[date | None, Query(description="Last UTC day; default today.")] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
) -> AnalyticsSummary:
    """Calls per day, answer rate, average duration, voice-to-voice p50/p95 and usage units, computed by MongoDB
    aggregation."""
    return await services.analytics.summary(principal, since, until, agent_id)


@router.get("/costs")
async def analytics_costs(
    principal: AnalyticsRead, services: ServicesDep,
    since: Annotated[date | None, Query(description="First UTC day; default 29 days before `until`.")] = None,
    until: Annotated[date | None, Query(description="Last UTC day; default today.")] = None,
) -> CostAnalytics:
    """Cost per day, per agent, per campaign and per minute of call, from each ended call's cost (price book)."""
    return await services.billing.costs(principal, *day_range(since, until))
