"""Supervisors acting on a live call (owners and admins; audited): listen in, whisper an instruction to the agent.

The voice server is the only process that touches a call; the backend finds the replica that holds it (its
heartbeat lease lists the call and says where the replica is reached, services/call_leases.py) and forwards the
request with a service token. A call whose replica stopped beating gets a clear 409 `voice_server_gone`.
"""

from __future__ import annotations

import httpx

from backend.db.collections import CALLS, Db
from backend.errors import ApiError, conflict, not_found
from backend.models.live import ListenTicket
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from backend.services.call_leases import VOICE_SERVERS
from core.listen_ticket import TICKET_TTL_S, mint_listen_ticket
from core.service_auth import mint_service_token


class LiveControl:
    def __init__(self, db: Db, http: httpx.AsyncClient, audit: AuditLog, service_token_secret: str) -> None:
        self._db = db
        self._http = http
        self._audit = audit
        self._secret = service_token_secret

    async def replica_url(self, principal: Principal, call_id: str) -> str:
        call = await self._db[CALLS].find_one({"_id": call_id}, {"org_id": 1, "ended_at": 1, "voice_server_id": 1})
        if call is None or call["org_id"] != principal.org_id:
            raise not_found("Live call")
        if call.get("ended_at") is not None:
            raise conflict("The call has ended", "call_ended")
        leases = [d async for d in self._db[VOICE_SERVERS].find({"server_id": call.get("voice_server_id"),
                                                                  "lost_at": None})]
        holding = [d for d in leases if call_id in (d.get("calls") or [])] or leases
        urls = [d["url"] for d in sorted(holding, key=lambda d: d["beat_at"], reverse=True) if d.get("url")]
        if not urls:
            raise conflict("The voice server holding this call is gone; the call cannot be reached",
                           "voice_server_gone")
        return str(urls[0]).rstrip("/")

    async def listen_ticket(self, principal: Principal, call_id: str) -> ListenTicket:
        """Listen-in: the socket on the replica holding the call (voice_server/routes/listen.py) and a ticket
        good for that call only, for a minute."""
        url = await self.replica_url(principal, call_id)
        ws = "wss://" + url.removeprefix("https://") if url.startswith("https://") else \
            "ws://" + url.removeprefix("http://")
        ticket = mint_listen_ticket(self._secret, call_id)
        await self._audit.record(principal.org_id, principal, "call.listened", "call", call_id)
        return ListenTicket(url=f"{ws}/v1/listen/{call_id}", ticket=ticket, expires_in_s=TICKET_TTL_S)

    async def whisper(self, principal: Principal, call_id: str, text: str) -> None:
        url = await self.replica_url(principal, call_id)
        token = mint_service_token(self._secret, "backend")
        try:
            resp = await self._http.post(f"{url}/internal/v1/calls/{call_id}/whisper", json={"text": text},
                                         headers={"Authorization": f"Bearer {token}"}, timeout=5.0)
        except httpx.HTTPError as exc:
            raise conflict(f"The voice server holding this call did not answer ({type(exc).__name__})",
                           "voice_server_gone") from exc
        if resp.status_code == 404:
            raise conflict("The call is no longer live on its voice server", "call_ended")
        if resp.status_code != 204:
            raise ApiError(502, "bad_gateway", f"The voice server answered {resp.status_code}")
        await self._audit.record(principal.org_id, principal, "call.whispered", "call", call_id,
                                 {"chars": len(text)})
