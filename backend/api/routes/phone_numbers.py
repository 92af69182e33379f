"""/api/v1/phone-numbers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from backend.api.deps import NumbersRead, NumbersWrite, ServicesDep
from backend.api.responses import AUTHENTICATED, CONFLICT, NOT_FOUND
from backend.models.phone_numbers import PhoneNumberCreate, PhoneNumberOut, PhoneNumberUpdate

router = APIRouter(prefix="/phone-numbers", tags=["phone numbers"], responses=AUTHENTICATED)
NumberId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("")
async def list_phone_numbers(principal: NumbersRead, services: ServicesDep) -> list[PhoneNumberOut]:
    return await services.numbers.list_numbers(principal)


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_phone_number(body: PhoneNumberCreate, principal: NumbersWrite, services: ServicesDep) -> PhoneNumberOut:
    return await services.numbers.create(principal, body)


@router.get("/{number_id}", responses=NOT_FOUND)
async def get_phone_number(number_id: NumberId, principal: NumbersRead, services: ServicesDep) -> PhoneNumberOut:
    return await services.numbers.get(principal, number_id)


@router.post("/{number_id}/verify", responses={**NOT_FOUND, **CONFLICT})
async def verify_phone_number(number_id: NumberId, principal: NumbersWrite, services: ServicesDep) -> PhoneNumberOut:
    """Asks the carrier, with the organisation's credentials, whether its account owns the number; only then does
    the number route calls. Done on creation too when the credentials are there already."""
    return await services.numbers.verify(principal, number_id)


@router.patch("/{number_id}", responses=NOT_FOUND)
async def update_phone_number(
    number_id: NumberId, body: PhoneNumberUpdate, principal: NumbersWrite, services: ServicesDep
) -> PhoneNumberOut:
    """Link or unlink (`"agent_id": null`) the answering agent, or relabel."""
    return await services.numbers.update(principal, number_id, body)


@router.delete("/{number_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_phone_number(number_id: NumberId, principal: NumbersWrite, services: ServicesDep) -> Response:
    await services.numbers.delete(principal, number_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
