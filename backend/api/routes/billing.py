"""/api/v1/org/billing: the organisation's price book (platform defaults with its overrides), monthly budget and
this month's spend."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import OrgRead, OrgUpdate, ServicesDep
from backend.api.responses import AUTHENTICATED
from backend.models.billing import BillingOut, BudgetSettings, PriceBook

router = APIRouter(prefix="/org/billing", tags=["organization"], responses=AUTHENTICATED)


@router.get("")
async def get_billing(principal: OrgRead, services: ServicesDep) -> BillingOut:
    return await services.billing.get(principal)


@router.put("/price-book")
async def put_price_book(body: PriceBook, principal: OrgUpdate, services: ServicesDep) -> BillingOut:
    """Replaces the organisation's prices (negative prices are a 422); calls are costed with them from now on."""
    return await services.billing.set_price_book(principal, body)


@router.put("/budget")
async def put_budget(body: BudgetSettings, principal: OrgUpdate, services: ServicesDep) -> BillingOut:
    """At the monthly budget the dialer pauses the organisation's campaigns (reason shown on each) and inbound
    calls follow `over_budget_inbound`."""
    return await services.billing.set_budget(principal, body)
