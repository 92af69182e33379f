"""/api/v1/calls: list with filters and cursor pagination, detail, recording, CSV export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response, status
from fastapi.responses import StreamingResponse

from backend.api.deps import CallsDelete, CallsExport, CallsRead, RecordingsRead, ServicesDep
from backend.api.responses import AUTHENTICATED, CONFLICT, NOT_FOUND
from backend.models.calls import CallDetail, CallFilters, CallSummary, RecordingLink
from backend.models.common import Page

router = APIRouter(prefix="/calls", tags=["calls"], responses=AUTHENTICATED)
CallId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("")
async def list_calls(
    principal: CallsRead, services: ServicesDep, filters: Annotated[CallFilters, Query()],
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[CallSummary]:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    return await services.call_history.list_calls(principal, filters, cursor, limit)


@router.get("/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "CSV, one call per row"}})
async def export_calls(
    principal: CallsExport, services: ServicesDep, filters: Annotated[CallFilters, Query()]
) -> StreamingResponse:
    """Same filters as the list. Cells starting with = + - @ are prefixed with ' so spreadsheets show them as text."""
    rows = await services.call_history.export_csv(principal, filters)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(rows, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'})


@router.get("/{call_id}", responses=NOT_FOUND)
async def get_call(call_id: CallId, principal: CallsRead, services: ServicesDep) -> CallDetail:
    """Transcript turns with per-turn latency, tool calls, end reason, usage units and recording info."""
    return await services.call_history.detail(principal, call_id)


@router.get("/{call_id}/recording", responses=NOT_FOUND)
async def get_recording_link(
    call_id: CallId, principal: RecordingsRead, services: ServicesDep,
    expires_in: Annotated[int | None, Query(ge=1, le=3600, description="Seconds the URL stays valid.")] = None,
) -> RecordingLink:
    """A presigned URL on the object store (stereo WAV: caller left, agent right)."""
    return await services.call_history.recording_link(principal, call_id, expires_in)


@router.get("/{call_id}/recording/audio", response_class=StreamingResponse,
            responses={**NOT_FOUND, 200: {"content": {"audio/wav": {}}}, 206: {"description": "Partial content"},
                       416: {"description": "Range not satisfiable"}})
async def stream_recording(
    call_id: CallId, principal: RecordingsRead, services: ServicesDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> StreamingResponse:
    """The recording through the backend, with HTTP Range support for seeking."""
    stream = await services.call_history.recording_stream(principal, call_id, range_header)
    return StreamingResponse(stream.body, status_code=stream.status, headers=stream.headers,
                             media_type=stream.headers["Content-Type"])


@router.delete("/{call_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def delete_call(call_id: CallId, principal: CallsDelete, services: ServicesDep) -> Response:
    """Owners and admins: the call, its transcript and recording, everywhere (list, export, analytics). 409 while
    the call is still in progress."""
    await services.call_deletion.delete_call(principal, call_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
