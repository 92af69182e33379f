"""/api/v1/campaigns: outbound campaigns (contacts from CSV, lifecycle, progress, live events, outcome report),
/api/v1/campaign-settings (organisation-wide cap) and /api/v1/campaign-callbacks (carrier callbacks, signed URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from backend.api.deps import require
from backend.api.responses import AUTHENTICATED, CONFLICT, NOT_FOUND, PUBLIC
from backend.campaigns.callbacks import CallbackRejected
from backend.campaigns.models import (
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    ContactOut,
    ContactStatus,
    ImportReport,
    OrgCampaignSettings,
    Progress,
)
from backend.campaigns.runtime import CampaignRuntime
from backend.errors import ApiError
from backend.models.common import Page
from backend.security.permissions import Permission, Principal

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=AUTHENTICATED)
settings_router = APIRouter(prefix="/campaign-settings", tags=["campaigns"], responses=AUTHENTICATED)
callback_router = APIRouter(prefix="/campaign-callbacks", tags=["campaign callbacks"], responses=PUBLIC)

CampaignsRead = Annotated[Principal, Depends(require(Permission.campaigns_read))]
CampaignsWrite = Annotated[Principal, Depends(require(Permission.campaigns_write))]
CampaignId = Annotated[str, Path(min_length=1, max_length=64)]
TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"description": "File larger than CAMPAIGN_CSV_MAX_BYTES"}}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "CSV (cells safe to open in a spreadsheet)"}}


async def get_runtime(request: Request) -> CampaignRuntime:  # async: no thread-pool hop (see deps.get_services)
    runtime: CampaignRuntime = request.app.state.campaigns
    return runtime


RuntimeDep = Annotated[CampaignRuntime, Depends(get_runtime)]


@router.get("")
async def list_campaigns(principal: CampaignsRead, rt: RuntimeDep) -> list[CampaignOut]:
    return await rt.campaigns.list(principal)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_campaign(body: CampaignCreate, principal: CampaignsWrite, rt: RuntimeDep) -> CampaignOut:
    """A draft campaign: upload contacts, then start it."""
    return await rt.campaigns.create(principal, body)


@router.get("/{campaign_id}", responses=NOT_FOUND)
async def get_campaign(campaign_id: CampaignId, principal: CampaignsRead, rt: RuntimeDep) -> CampaignOut:
    return await rt.campaigns.get(principal, campaign_id)


@router.patch("/{campaign_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_campaign(campaign_id: CampaignId, body: CampaignUpdate, principal: CampaignsWrite,
                          rt: RuntimeDep) -> CampaignOut:
    """Any subset of settings; a running campaign's dialers pick changes up within a poll."""
    return await rt.campaigns.update(principal, campaign_id, body)


@router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def delete_campaign(campaign_id: CampaignId, principal: CampaignsWrite, rt: RuntimeDep) -> Response:
    """Only a draft, completed or canceled campaign with no call in progress."""
    await rt.campaigns.delete(principal, campaign_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{campaign_id}/contacts", status_code=status.HTTP_201_CREATED,
             responses={**NOT_FOUND, **CONFLICT, **TOO_LARGE})
async def upload_contacts(
    campaign_id: CampaignId, principal: CampaignsWrite, rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="CSV: a phone column, other columns become template variables, "
                                                 "optional `timezone` column (IANA)")],
    phone_column: Annotated[str | None, Form(max_length=100)] = None,
    default_region: Annotated[str | None, Form(pattern=r"^[A-Z]{2}$")] = None,
) -> ImportReport:
    """All or nothing: if any row is invalid, nothing is imported and the 422 lists every row's problem
    (`details[].path` = `file.rows[<row>].<column>`). Numbers are normalised to E.164 and deduplicated; numbers already
    in the campaign are skipped. UTF-8 (with or without BOM), UTF-16 with BOM and Latin-1/Windows-1252 are read."""
    limit = rt.campaigns.csv_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"file is larger than {limit} bytes")
    return await rt.campaigns.import_contacts(principal, campaign_id, data, phone_column, default_region)


@router.get("/{campaign_id}/imports/{import_id}", responses=NOT_FOUND)
async def get_import(campaign_id: CampaignId, import_id: CampaignId, principal: CampaignsRead,
                     rt: RuntimeDep) -> ImportReport:
    """An upload's report, including the row errors of a rejected upload."""
    return await rt.campaigns.import_report(principal, campaign_id, import_id)


@router.get("/{campaign_id}/imports/{import_id}/errors.csv", response_class=Response,
            responses={**NOT_FOUND, **CSV_RESPONSE})
async def get_import_errors(campaign_id: CampaignId, import_id: CampaignId, principal: CampaignsRead,
                            rt: RuntimeDep) -> Response:
    body = await rt.campaigns.import_errors_csv(principal, campaign_id, import_id)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'})


@router.get("/{campaign_id}/contacts", responses=NOT_FOUND)
async def list_contacts(
    campaign_id: CampaignId, principal: CampaignsRead, rt: RuntimeDep,
    status_: Annotated[ContactStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[ContactOut]:
    return await rt.campaigns.contacts(principal, campaign_id, status_, cursor, limit)


@router.get("/{campaign_id}/progress", responses=NOT_FOUND)
async def campaign_progress(campaign_id: CampaignId, principal: CampaignsRead, rt: RuntimeDep) -> Progress:
    """Contacts per status, live calls (slots held), dials so far."""
    return await rt.campaigns.progress(principal, campaign_id)


@router.get("/{campaign_id}/events", response_class=StreamingResponse, responses={
    **NOT_FOUND, 200: {"content": {"text/event-stream": {}},
                       "description": "Server-sent events: `progress` (a Progress object) on every change, "
                                      "`end` when the campaign is over; a comment every 15 s keeps proxies open."}})
async def campaign_events(campaign_id: CampaignId, request: Request, principal: CampaignsRead,
                          rt: RuntimeDep) -> StreamingResponse:
    stream = rt.campaigns.events(principal, campaign_id, request.is_disconnected)
    try:
        first = await anext(stream)  # a 404 comes before the stream starts, not in the middle of it
    except StopAsyncIteration:
        first = ": closed\n\n"
    return StreamingResponse(_prepend(first, stream), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for item in rest:
        yield item


@router.get("/{campaign_id}/report.csv", response_class=Response, responses={**NOT_FOUND, **CSV_RESPONSE})
async def campaign_report(campaign_id: CampaignId, principal: CampaignsRead, rt: RuntimeDep) -> Response:
    """One row per contact: status, dials, each attempt's outcome, last call, and the contact's variables."""
    body = await rt.campaigns.report_csv(principal, campaign_id)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'})


@router.post("/{campaign_id}/{action}", responses={**NOT_FOUND, **CONFLICT})
async def campaign_action(campaign_id: CampaignId, action: Literal["start", "pause", "resume", "cancel"],
                          principal: CampaignsWrite, rt: RuntimeDep) -> CampaignOut:
    """start (draft), pause (running), resume (paused), cancel. Takes effect within one dialer poll; calls already
    connected finish normally."""
    return await rt.campaigns.transition(principal, campaign_id, action)


@settings_router.get("")
async def get_campaign_settings(principal: CampaignsRead, rt: RuntimeDep) -> OrgCampaignSettings:
    """Organisation-wide limits for all campaigns together."""
    return await rt.campaigns.org_settings(principal)


@settings_router.put("")
async def put_campaign_settings(body: OrgCampaignSettings, principal: CampaignsWrite,
                                rt: RuntimeDep) -> OrgCampaignSettings:
    return await rt.campaigns.put_org_settings(principal, body)


# -- carrier callbacks (authenticated by the signed URL and, where the carrier signs, its signature) ----------------
Carrier = Literal["twilio", "vobiz"]
AttemptId = Annotated[str, Path(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]
Token = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_=-]+$")]
CALLBACK_ERRORS: dict[int | str, dict[str, Any]] = {403: {"description": "Bad token or carrier signature"}, 404: {"description": "Unknown attempt"}}


async def _form(request: Request, rt: CampaignRuntime, carrier: str, attempt_id: str, token: str) -> dict[str, str]:
    """The callback's fields, read only once its URL token is right: an unauthenticated body is never parsed."""
    if not rt.callbacks.urls.valid(carrier, attempt_id, token):
        raise CallbackRejected(403, "invalid callback token")
    if request.method == "GET":
        return dict(request.query_params)
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _rejected(exc: CallbackRejected) -> Response:
    return Response(str(exc), status_code=exc.status, media_type="text/plain")


@callback_router.post("/{carrier}/{attempt_id}/{token}/status",
                           status_code=status.HTTP_204_NO_CONTENT, responses=CALLBACK_ERRORS)
async def campaign_call_status(carrier: Carrier, attempt_id: AttemptId, token: Token, request: Request,
                               rt: RuntimeDep) -> Response:
    """Twilio StatusCallback / Vobiz hangup_url for a campaign call."""
    try:
        await rt.callbacks.on_status(carrier, attempt_id, token, await _form(request, rt, carrier, attempt_id, token), request.headers,
                                     request.method)
    except CallbackRejected as exc:
        return _rejected(exc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@callback_router.post("/{carrier}/{attempt_id}/{token}/amd",
                           status_code=status.HTTP_204_NO_CONTENT, responses=CALLBACK_ERRORS)
async def campaign_call_amd(carrier: Carrier, attempt_id: AttemptId, token: Token, request: Request,
                            rt: RuntimeDep) -> Response:
    """Twilio AsyncAmdStatusCallback / Vobiz machine_detection_url: a machine answer applies the voicemail policy."""
    try:
        await rt.callbacks.on_amd(carrier, attempt_id, token, await _form(request, rt, carrier, attempt_id, token), request.headers, request.method)
    except CallbackRejected as exc:
        return _rejected(exc)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@callback_router.post("/{carrier}/{attempt_id}/{token}/voicemail",
                           response_class=Response, responses=CALLBACK_ERRORS)
async def campaign_voicemail_document(carrier: Carrier, attempt_id: AttemptId, token: Token, request: Request,
                                      rt: RuntimeDep) -> Response:
    """The document a carrier runs to leave the campaign's voicemail message (Vobiz transfer target)."""
    try:
        body = await rt.callbacks.voicemail(carrier, attempt_id, token, await _form(request, rt, carrier, attempt_id, token), request.headers,
                                            request.method)
    except CallbackRejected as exc:
        return _rejected(exc)
    return Response(body, media_type="application/xml")
