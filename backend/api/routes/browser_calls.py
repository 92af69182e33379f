"""/api/v1/test-calls: browser test calls (the WebSocket protocol is in frontend/README.md)."""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.api.deps import AgentsWrite, ServicesDep
from backend.api.responses import AUTHENTICATED
from backend.errors import ErrorResponse
from backend.models.browser_calls import BrowserCallRequest, BrowserCallSession

router = APIRouter(prefix="/test-calls", tags=["calls"], responses={
    **AUTHENTICATED, 503: {"model": ErrorResponse, "description": "Browser test calls are not configured"},
})


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_test_call(body: BrowserCallRequest, principal: AgentsWrite,
                           services: ServicesDep) -> BrowserCallSession:
    """Creates the call (it shows in the call log with its transcript and recording) and returns the voice server
    socket URL to open within `expires_in_s`, once."""
    return await services.browser_calls.create(principal, body.agent_id)
