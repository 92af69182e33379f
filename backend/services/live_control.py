"""Supervisors acting on a live call (owners and admins; audited): listen in, take over, whisper an instruction to
the agent. And the campaign callbacks relaying a carrier's AMD verdict to the call's in-call voicemail detector.

The voice server is the only process that touches a call; the backend finds the replica that holds it (its
heartbeat lease lists the call and says where the replica is reached, services/call_leases.py) and forwards the
request with a service token. A call whose replica stopped beating gets a clear 409 `voice_server_gone`.
"""

from __future__ import annotations

import logging

import httpx

from backend.db.collections import CALLS, CALLS_ARCHIVE, Db
from backend.db.tiered import Tiered
from backend.errors import ApiError, conflict, not_found
from backend.models.live import ListenTicket
from backend.security.permissions import Principal
from backend.services.audit import AuditLog
from backend.services.call_leases import VOICE_SERVERS
from core.listen_ticket import TICKET_TTL_S, TicketPurpose, mint_listen_ticket
from core.service_auth import mint_service_token
from telephony.base import MachineDetection

log = logging.getLogger(__name__)


async def replica_of(db: Db, call_id: str, server_id: str | None) -> str:
    """The base URL of the live voice-server replica holding the call (its heartbeat lease lists the call)."""
    leases = [d async for d in db[VOICE_SERVERS].find({"server_id": server_id, "lost_at": None})]
    holding = [d for d in leases if call_id in (d.get("calls") or [])] or leases
    urls = [d["url"] for d in sorted(holding, key=lambda d: d["beat_at"], reverse=True) if d.get("url")]
    if not urls:
        raise conflict("The voice server holding this call is gone; the call cannot be reached",
                       "voice_server_gone")
    return str(urls[0]).rstrip("/")


class LiveControl:
    def __init__(self, db: Db, http: httpx.AsyncClient, audit: AuditLog, service_token_secret: str) -> None:
        self._db = db
        self._http = http
        self._audit = audit
        self._secret = service_token_secret
        self._calls = Tiered(db, CALLS, CALLS_ARCHIVE)

    async def replica_url(self, principal: Principal, call_id: str) -> str:
        """Where the voice server holding the call is reached. 404: no such call in the organisation; 409
        `call_ended` for a call that has ended (archived ones included), `voice_server_gone` when its replica
        stopped beating."""
        call = await self._calls.find_one(call_id)
        if call is None or call["org_id"] != principal.org_id:
            raise not_found("Live call")
        if call.get("ended_at") is not None:
            raise conflict("The call has ended", "call_ended")
        return await replica_of(self._db, call_id, call.get("voice_server_id"))

    async def _ticket(self, principal: Principal, call_id: str, purpose: TicketPurpose, action: str
                      ) -> ListenTicket:
        url = await self.replica_url(principal, call_id)
        ws = "wss://" + url.removeprefix("https://") if url.startswith("https://") else \
            "ws://" + url.removeprefix("http://")
        ticket = mint_listen_ticket(self._secret, call_id, purpose=purpose)
        await self._audit.record(principal.org_id, principal, action, "call", call_id)
        return ListenTicket(url=f"{ws}/v1/{purpose}/{call_id}", ticket=ticket, expires_in_s=TICKET_TTL_S)

    async def listen_ticket(self, principal: Principal, call_id: str) -> ListenTicket:
        """Listen-in: the socket on the replica holding the call (voice_server/routes/listen.py) and a ticket
        good for that call only, for a minute."""
        return await self._ticket(principal, call_id, "listen", "call.listened")

    async def takeover_ticket(self, principal: Principal, call_id: str) -> ListenTicket:
        """Take-over: the socket on the replica holding the call (voice_server/routes/takeover.py) where the
        supervisor's browser replaces the agent, and a one-minute ticket for that call only."""
        return await self._ticket(principal, call_id, "takeover", "call.taken_over")

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

    async def relay_machine_detection(self, call_id: str, detection: MachineDetection, message: str | None) -> bool:
        """A campaign call's carrier AMD verdict, to the voice server holding the call: its in-call voicemail
        detector leaves `message` in the agent's own voice. False when the call is not live with in-call detection
        (the caller then acts on the verdict itself)."""
        call = await self._db[CALLS].find_one({"_id": call_id}, {"voice_server_id": 1, "ended_at": 1})
        if call is None or call.get("ended_at") is not None or not call.get("voice_server_id"):
            return False
        try:
            url = await replica_of(self._db, call_id, call["voice_server_id"])
            resp = await self._http.post(
                f"{url}/internal/v1/calls/{call_id}/machine-detection",
                json={"answered_by": detection.answered_by, "carrier_call_id": detection.carrier_call_id,
                      "message": message},
                headers={"Authorization": f"Bearer {mint_service_token(self._secret, 'backend')}"}, timeout=15.0)
        except (ApiError, httpx.HTTPError) as exc:
            log.info("AMD verdict for call %s not relayed: %s", call_id, exc)
            return False
        return resp.status_code == 204
