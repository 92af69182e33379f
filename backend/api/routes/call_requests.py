"""POST /api/v1/calls: place one outbound call (a CRM's "call this customer now"), with a JWT or an API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from backend.api.responses import AUTHENTICATED, CONFLICT
from backend.api.routes.campaigns import CampaignsWrite, RuntimeDep
from backend.campaigns.single_calls import CallRequest, CallRequestOut
from backend.errors import ErrorResponse

router = APIRouter(prefix="/calls", tags=["calls"], responses=AUTHENTICATED)


@router.post("", status_code=status.HTTP_201_CREATED, responses={
    **CONFLICT, 200: {"model": CallRequestOut, "description": "A replay of an earlier request with this key"},
    429: {"model": ErrorResponse, "description": "The organisation's concurrent-call cap is reached"},
    502: {"model": ErrorResponse, "description": "The carrier refused the call"}})
async def place_call(body: CallRequest, principal: CampaignsWrite, runtime: RuntimeDep, response: Response,
                     idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None
                     ) -> CallRequestOut:
    """Same rules as a campaign dial: 409 `do_not_call` for a number on the do-not-call list, 409
    `outside_calling_window` when `calling_window` is given and closed, 429 `org_concurrency_limit` at the
    organisation's cap, 422 for an unknown agent, a number not of this organisation or no carrier credentials.
    Nothing is stored or dialled when a request is refused. With `Idempotency-Key`, a retry returns the first call
    (200, `replayed: true`)."""
    placed = await runtime.single_calls.place(principal, body, idempotency_key)
    if placed.replayed:
        response.status_code = status.HTTP_200_OK
    return placed
