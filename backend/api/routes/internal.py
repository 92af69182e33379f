"""/internal/v1: the voice server's and dialer's API. Service tokens only (core.service_auth)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from backend.api.deps import ServiceCaller, ServicesDep
from backend.errors import ApiError, ErrorDetail, ErrorResponse
from backend.models.browser_calls import BrowserCallClaim
from backend.models.internal import OrgEventAck, OrgEventIn, OutboundCallCreate
from core.call_events import (
    VOICE_SERVER_ID_PATTERN,
    CallEventAck,
    CallEventBatch,
    OutboundCallContext,
    ResolvedAgent,
    VoiceServerHeartbeat,
    VoiceServerHeartbeatAck,
)

router = APIRouter(prefix="/internal/v1", tags=["internal"], responses={
    401: {"model": ErrorResponse, "description": "Missing or invalid service token"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
})
Id = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/agents/by-number/{number}", responses={404: {"model": ErrorResponse}})
async def agent_by_number(number: Annotated[str, Path(pattern=r"^\+[1-9]\d{6,14}$")], caller: ServiceCaller,
                          services: ServicesDep) -> ResolvedAgent:
    """Inbound routing: the agent linked to this number, with the organisation's decrypted carrier credentials."""
    return await services.call_routing.agent_by_number(number)


@router.get("/agents/{agent_id}", responses={404: {"model": ErrorResponse}})
async def agent_by_id(agent_id: Id, caller: ServiceCaller, services: ServicesDep) -> ResolvedAgent:
    return await services.call_routing.agent_by_id(agent_id)


@router.post("/calls", status_code=status.HTTP_201_CREATED)
async def create_outbound_call(body: OutboundCallCreate, caller: ServiceCaller,
                               services: ServicesDep) -> OutboundCallContext:
    """The dialer registers a call before dialling (idempotent by `call_id`)."""
    return await services.call_routing.create_outbound_call(body)


@router.post("/calls/events")
async def post_call_events(batch: CallEventBatch, caller: ServiceCaller, services: ServicesDep) -> CallEventAck:
    """Stores each event once by `event_id`: a retried batch reports the repeats as `duplicates`."""
    return await services.ingest.ingest(batch, source=caller)


@router.get("/calls/{call_id}/context", responses={404: {"model": ErrorResponse}})
async def outbound_call_context(call_id: Id, caller: ServiceCaller, services: ServicesDep) -> OutboundCallContext:
    return await services.call_routing.outbound_context(call_id)


@router.post("/test-calls/{call_id}/claim", responses={404: {"model": ErrorResponse},
                                                       409: {"model": ErrorResponse}})
async def claim_test_call(call_id: Id, body: BrowserCallClaim, caller: ServiceCaller,
                          services: ServicesDep) -> ResolvedAgent:
    """The voice server uses a browser call's token once: the agent to run, or 409 when it was used before."""
    return await services.browser_calls.claim(call_id, body.nonce)


@router.post("/org-events", responses={422: {"model": ErrorResponse}})
async def post_org_event(body: OrgEventIn, caller: ServiceCaller, services: ServicesDep) -> OrgEventAck:
    """campaign.* events for the organisation's webhooks (idempotent by `event_id`)."""
    new = await services.ingest.ingest_org_event(body, source=caller)
    return OrgEventAck(accepted=new, duplicate=not new)


@router.post("/voice-servers/{voice_server_id}/heartbeat")
async def voice_server_heartbeat(voice_server_id: Annotated[str, Path(pattern=VOICE_SERVER_ID_PATTERN)],
                                 body: VoiceServerHeartbeat, caller: ServiceCaller,
                                 services: ServicesDep) -> VoiceServerHeartbeatAck:
    """A voice server renews the lease on its live calls; when beats stop, its calls end as `voice_server_lost`."""
    if body.voice_server_id != voice_server_id:
        raise ApiError(422, "validation_error", "body.voice_server_id: must match the path",
                       [ErrorDetail(path="body.voice_server_id", message="must match the path")])
    return await services.call_leases.heartbeat(body)
