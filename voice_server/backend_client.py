"""The backend's internal API (/internal/v1), called with a short-lived service token (core.service_auth)."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from core.call_events import (
    CallEventAck,
    CallEventBatch,
    OutboundCallContext,
    ResolvedAgent,
    VoiceServerHeartbeat,
)
from core.service_auth import ServiceTokenSource

_M = TypeVar("_M", bound=BaseModel)


class BackendUnavailable(Exception):
    """The backend could not be reached or answered 5xx: worth retrying."""


class BackendRejected(Exception):
    """The backend refused the request (4xx other than 404/408/429): retrying the same thing will not help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"backend answered {status}: {detail[:300]}")
        self.status = status


class BackendClient:
    PREFIX = "/internal/v1"

    def __init__(self, base_url: str, tokens: ServiceTokenSource, http: httpx.AsyncClient) -> None:
        self._base = base_url.rstrip("/") + self.PREFIX
        self._tokens = tokens
        self._http = http

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens.token()}"}

    async def _request(self, method: str, path: str, json: object | None = None) -> httpx.Response:
        try:
            resp = await self._http.request(method, self._base + path, json=json, headers=self._headers())
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise BackendUnavailable(f"backend answered {resp.status_code}")
        return resp

    async def _get_optional(self, path: str, model: type[_M]) -> _M | None:
        return self._parsed_or_none(await self._request("GET", path), model, absent=(404,))

    @staticmethod
    def _parsed_or_none(resp: httpx.Response, model: type[_M], absent: tuple[int, ...]) -> _M | None:
        """The body as `model`; None for an `absent` status; BackendRejected for any other failure."""
        if resp.status_code in absent:
            return None
        if not resp.is_success:
            raise BackendRejected(resp.status_code, resp.text)
        try:
            return model.model_validate(resp.json())
        except (ValueError, ValidationError) as exc:
            raise BackendRejected(resp.status_code, f"unexpected body: {exc}") from exc

    async def agent_by_number(self, e164: str) -> ResolvedAgent | None:
        return await self._get_optional(f"/agents/by-number/{quote(e164, safe='')}", ResolvedAgent)

    async def agent_by_id(self, agent_id: str) -> ResolvedAgent | None:
        return await self._get_optional(f"/agents/{quote(agent_id, safe='')}", ResolvedAgent)

    async def outbound_context(self, call_id: str) -> OutboundCallContext | None:
        return await self._get_optional(f"/calls/{quote(call_id, safe='')}/context", OutboundCallContext)

    async def post_events(self, batch: CallEventBatch) -> CallEventAck:
        resp = await self._request("POST", "/calls/events", json=batch.model_dump(mode="json"))
        if not resp.is_success:
            raise BackendRejected(resp.status_code, resp.text)
        try:
            return CallEventAck.model_validate(resp.json())
        except (ValueError, ValidationError):
            return CallEventAck(accepted=len(batch.events), duplicates=0)

    async def heartbeat(self, beat: VoiceServerHeartbeat) -> None:
        """Renews the lease on this server's live calls (backend/services/call_leases.py)."""
        resp = await self._request("POST", f"/voice-servers/{quote(beat.voice_server_id, safe='')}/heartbeat",
                                   json=beat.model_dump(mode="json"))
        if not resp.is_success:
            raise BackendRejected(resp.status_code, resp.text)

    async def claim_browser_call(self, call_id: str, nonce: str) -> ResolvedAgent | None:
        """Uses a browser test call's token (once): the agent to run; None when the call is unknown or the token
        was used before (409)."""
        resp = await self._request("POST", f"/test-calls/{quote(call_id, safe='')}/claim", json={"nonce": nonce})
        return self._parsed_or_none(resp, ResolvedAgent, absent=(404, 409))
