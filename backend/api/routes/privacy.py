"""/api/v1/privacy: retention periods, the record of what was deleted, and "forget this phone number"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import AuditRead, CallsDelete, OrgRead, ServicesDep
from backend.api.responses import AUTHENTICATED, CONFLICT
from backend.models.retention import ErasureRecord, ForgetNumberIn, ForgetNumberOut, RetentionSettings

router = APIRouter(prefix="/privacy", tags=["privacy"], responses=AUTHENTICATED)


@router.get("/retention")
async def get_retention(principal: OrgRead, services: ServicesDep) -> RetentionSettings:
    """Days after a call ends before its recording, transcript, or whole record are deleted (null: kept)."""
    return await services.retention.get(principal)


@router.put("/retention")
async def put_retention(body: RetentionSettings, principal: CallsDelete, services: ServicesDep) -> RetentionSettings:
    """Owners and admins. Housekeeping applies the periods within a few minutes; audited."""
    return await services.retention.put(principal, body)


@router.get("/erasures")
async def list_erasures(
    principal: AuditRead, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ErasureRecord]:
    """What was deleted (call id, scope, reason, objects), newest first. Holds no numbers or text."""
    return await services.retention.erasures(principal, limit)


@router.post("/forget-number", responses=CONFLICT)
async def forget_number(body: ForgetNumberIn, principal: CallsDelete, services: ServicesDep) -> ForgetNumberOut:
    """A data-subject request: every call to or from the number and every campaign contact row with it. 409 while
    a call with the number is in progress. The audit entry records counts only."""
    return await services.call_deletion.forget_number(principal, body.number)
