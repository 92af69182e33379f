"""/api/v1/dnc: the organisation's do-not-call list, checked by the dialer right before every dial."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile, status

from backend.api.deps import require
from backend.api.responses import AUTHENTICATED, NOT_FOUND
from backend.api.routes.campaigns import RuntimeDep
from backend.campaigns.models import DncEntryIn, DncEntryOut, ImportReport
from backend.errors import ApiError
from backend.models.common import Page
from backend.security.permissions import Permission, Principal

router = APIRouter(prefix="/dnc", tags=["do-not-call"], responses=AUTHENTICATED)

DncRead = Annotated[Principal, Depends(require(Permission.dnc_read))]
DncWrite = Annotated[Principal, Depends(require(Permission.dnc_write))]
DncManage = Annotated[Principal, Depends(require(Permission.dnc_manage))]
Phone = Annotated[str, Path(min_length=3, max_length=40, description="E.164, or national with `region`")]
Region = Annotated[str, Query(pattern=r"^[A-Z]{2}$")]


@router.get("")
async def list_dnc(principal: DncRead, rt: RuntimeDep, cursor: Annotated[str | None, Query(max_length=64)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Page[DncEntryOut]:
    return await rt.dnc.list(principal, cursor, limit)


@router.post("", status_code=status.HTTP_201_CREATED, responses={200: {"description": "Already listed"}})
async def add_dnc(body: DncEntryIn, principal: DncWrite, rt: RuntimeDep, response: Response) -> DncEntryOut:
    """Adds a number (normalised to E.164). Adding a listed number again is harmless (200)."""
    entry, created = await rt.dnc.add(principal, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return entry


@router.post("/import", status_code=status.HTTP_201_CREATED, responses={413: {"description": "File too large"}})
async def import_dnc(
    principal: DncWrite, rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="CSV with a phone column and an optional `reason` column")],
    phone_column: Annotated[str | None, Form(max_length=100)] = None,
    default_region: Annotated[str, Form(pattern=r"^[A-Z]{2}$")] = "US",
) -> ImportReport:
    """All or nothing, with every invalid row listed in the 422 (`details[].path` = `file.rows[<row>].<column>`)."""
    limit = rt.campaigns.csv_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"file is larger than {limit} bytes")
    return await rt.dnc.import_csv(principal, data, phone_column, default_region)


@router.get("/{phone}", responses=NOT_FOUND)
async def get_dnc(phone: Phone, principal: DncRead, rt: RuntimeDep, region: Region = "US") -> DncEntryOut:
    """404 when the number is not listed."""
    return await rt.dnc.get(principal, phone, region)


@router.delete("/{phone}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def remove_dnc(phone: Phone, principal: DncManage, rt: RuntimeDep, region: Region = "US") -> Response:
    await rt.dnc.remove(principal, phone, region)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
