"""Browser test calls: the UI talks to an agent through the voice server's /v1/browser socket.

Creating one stores the call (direction inbound, carrier "browser") so it shows in the call log like a phone call,
and signs a short-lived call token into the socket URL (telephony/call_token.py, CALL_TOKEN_SECRET). The token is
single-use: the voice server claims its nonce here before the call starts (a unique insert into token_uses, atomic
across replicas), and a replayed URL gets 409.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.config import BackendSettings
from backend.db.collections import CALLS, TOKEN_USES, Db
from backend.db.ids import day_of, new_id, utcnow
from backend.errors import ApiError, ErrorDetail, conflict, not_found
from backend.models.browser_calls import BrowserCallSession
from backend.security.permissions import Principal
from backend.services.call_routing import CallRoutingService
from core.call_events import ResolvedAgent
from telephony.call_token import BrowserCallClaims, CallTokenError, mint_browser_token

BROWSER_SAMPLE_RATE = 16000  # the browser protocol's rate both ways (frontend/README.md)
BROWSER_FROM = "browser"


class BrowserCallService:
    def __init__(self, db: Db, settings: BackendSettings, call_routing: CallRoutingService,
                 on_call_created: Callable[[dict[str, Any], bool], Awaitable[None]]) -> None:
        self._db = db
        self._settings = settings
        self._call_routing = call_routing
        self._on_call_created = on_call_created

    def _ws_base(self, internal: bool) -> str:
        # The backend's own simulated caller (agent test runs) dials the voice server directly, not via the UI's origin.
        base = (self._settings.voice_server_url if internal
                else self._settings.test_call_ws_base_url or self._settings.voice_server_url).rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://"):]
        if base.startswith("http://"):
            return "ws://" + base[len("http://"):]
        return base  # ws(s):// already, or a path on the UI's origin

    async def create(self, principal: Principal, agent_id: str, internal: bool = False) -> BrowserCallSession:
        secret = self._settings.call_token_secret.get_secret_value()
        if not secret:
            raise ApiError(503, "test_calls_unavailable", "Browser test calls are not configured on this server "
                                                          "(CALL_TOKEN_SECRET is not set)")
        try:
            agent = await self._call_routing.agent_by_id(agent_id)
        except ApiError:
            agent = None
        if agent is None or agent.org_id != principal.org_id:
            raise ApiError(422, "validation_error", "body.agent_id: no such agent in this organisation",
                           [ErrorDetail(path="body.agent_id", message="no such agent in this organisation")])
        call_id = new_id()
        now = utcnow()
        doc = {
            "_id": call_id, "org_id": principal.org_id, "created_at": now, "day": day_of(now), "status": "queued",
            "answered": False, "direction": "inbound", "carrier": "browser", "from_number": BROWSER_FROM,
            "to_number": agent.agent_name[:64], "agent_id": agent.agent_id, "agent_version": agent.agent_version,
            "agent_name": agent.agent_name, "campaign_id": None, "contact_id": None, "variables": {},
            "tools": [], "usage": {}, "started_at": None, "answered_at": None, "ended_at": None, "end_reason": None,
            "duration_s": None, "recording": None, "carrier_call_id": call_id,
            "started_by": principal.actor,
            "metrics": [{"d": day_of(now), "k": "calls", "v": 1}, {"d": day_of(now), "k": "inbound", "v": 1}],
        }
        await self._db[CALLS].insert_one(doc)
        await self._on_call_created(doc, True)
        ttl = self._settings.test_call_token_ttl_s
        try:
            token = mint_browser_token(secret, BrowserCallClaims(call_id=call_id, org_id=principal.org_id,
                                                                 agent_id=agent.agent_id,
                                                                 nonce=secrets.token_hex(16)), ttl)
        except CallTokenError as exc:
            raise ApiError(503, "test_calls_unavailable", str(exc)) from exc
        return BrowserCallSession(call_id=call_id, ws_url=f"{self._ws_base(internal)}/v1/browser?token={token}",
                                  sample_rate=BROWSER_SAMPLE_RATE, expires_in_s=ttl)

    async def claim(self, call_id: str, nonce: str) -> ResolvedAgent:
        """The voice server's one use of a token: the agent to run, or 409 when the token was used before."""
        call = await self._db[CALLS].find_one({"_id": call_id})
        if call is None or call.get("carrier") != "browser" or not call.get("agent_id"):
            raise not_found("Browser call")
        try:
            await self._db[TOKEN_USES].insert_one({"_id": f"browser:{nonce}", "call_id": call_id, "at": utcnow()})
        except DuplicateKeyError:
            raise conflict("This test call token was already used", code="call_token_used") from None
        if call.get("started_at") is not None:
            raise conflict("This test call already ran", code="call_token_used")
        agent = await self._call_routing.agent_by_id(call["agent_id"])
        if agent.org_id != call["org_id"]:
            raise not_found("Agent")
        return agent
