"""What the voice server and dialer ask the backend: which agent answers a number, the context of a call the dialer
placed, and registering such a call. Only reachable with a service token (api/deps.py `service_caller`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.db.collections import CALLS, CALLS_ARCHIVE, Db
from backend.db.ids import day_of, new_id, utcnow
from backend.db.tiered import Tiered
from backend.errors import ApiError, ErrorDetail, conflict, not_found
from backend.knowledge.versions import KnowledgeVersions
from backend.models.internal import OutboundCallCreate
from backend.services.agents import AgentService
from backend.services.billing import BillingService
from backend.services.call_log import CallLog
from backend.services.carriers import CarrierCredentialService
from backend.services.phone_numbers import PhoneNumberService
from backend.services.secrets import SecretService
from core.agent_config import AgentConfig
from core.call_events import CarrierCredentials, OutboundCallContext, ResolvedAgent


class CallRoutingService:
    def __init__(
        self, db: Db, agents: AgentService, numbers: PhoneNumberService, carriers: CarrierCredentialService,
        secrets: SecretService, call_log: CallLog, on_call_created: Callable[[dict[str, Any], bool], Awaitable[None]],
    ) -> None:
        self._db = db
        self._knowledge_versions = KnowledgeVersions(db)
        self._agents = agents
        self._numbers = numbers
        self._carriers = carriers
        self._secrets = secrets
        self.billing: BillingService | None = None  # set by the container: inbound calls over the monthly budget
        self._call_log = call_log
        self._on_call_created = on_call_created
        self._calls = Tiered(db, CALLS, CALLS_ARCHIVE)

    async def agent_by_number(self, e164: str) -> ResolvedAgent:
        number = await self._numbers.by_number(e164)
        if number is None or not number.get("agent_id"):
            raise not_found("Agent for this number")
        resolved = await self._resolve(number["agent_id"], number["org_id"])
        resolved.phone_number_id = number["_id"]
        resolved.phone_number = number["number"]
        resolved.carrier_credentials = await self._carriers.decrypted(number["org_id"], number["carrier"])
        if self.billing is not None:
            over, _ = await self.billing.over_budget(number["org_id"])
            budget = await self.billing.budget(number["org_id"]) if over else None
            if budget is not None and budget.over_budget_inbound == "message":
                resolved.over_budget_message = budget.over_budget_message
        return resolved

    async def agent_by_id(self, agent_id: str) -> ResolvedAgent:
        return await self._resolve(agent_id, None)

    async def _resolve(self, agent_id: str, org_id: str | None) -> ResolvedAgent:
        loaded = await self._agents.load_for_call(agent_id)
        if loaded is None or (org_id is not None and loaded[0]["org_id"] != org_id):
            raise not_found("Agent")
        agent, config = loaded
        return ResolvedAgent(org_id=agent["org_id"], agent_id=agent["_id"], agent_version=agent["current_version"],
                             agent_name=agent["name"], config=config,
                             secrets=await self._secrets.for_call(agent["org_id"], config.secret_refs()),
                             knowledge_version=await self._knowledge_version(agent["org_id"], config))

    async def _knowledge_version(self, org_id: str, config: AgentConfig) -> int | None:
        return await self._knowledge_versions.current(org_id) if config.knowledge.knowledge_base_ids else None

    async def create_outbound_call(self, body: OutboundCallCreate, wait: bool = True) -> OutboundCallContext:
        """`wait`: whether to wait (bounded) for the call log to show the call (the dialer does not)."""
        # The agent and the caller id (with its carrier's credentials) at once: each dial waits for this.
        agent, caller = await asyncio.gather(self._resolve_for_org(body.agent_id, body.org_id),
                                             self._caller_id(body.org_id, body.from_number), return_exceptions=True)
        if isinstance(agent, BaseException):
            raise agent  # the agent's error first, as when they were read one after the other
        if isinstance(caller, BaseException):
            raise caller
        resolved, (caller_id, resolved.carrier_credentials) = agent, caller
        if caller_id is None:
            raise ApiError(422, "validation_error", "body.from_number: not a number of this organisation",
                           [ErrorDetail(path="body.from_number", message="not a number of this organisation")])
        resolved.phone_number_id = caller_id["_id"]
        resolved.phone_number = caller_id["number"]
        call_id = body.call_id or new_id()
        now = utcnow()
        doc = {
            "_id": call_id, "org_id": body.org_id, "created_at": now, "day": day_of(now), "status": "queued",
            "answered": False, "direction": "outbound", "carrier": caller_id["carrier"],
            "from_number": body.from_number, "to_number": body.to_number, "agent_id": resolved.agent_id,
            "agent_version": resolved.agent_version, "agent_name": resolved.agent_name,
            "campaign_id": body.campaign_id, "contact_id": body.contact_id, "variables": body.variables,
            "tools": [], "usage": {}, "started_at": None, "answered_at": None, "ended_at": None, "end_reason": None,
            "duration_s": None, "recording": None, "carrier_call_id": None,
            "metrics": [{"d": day_of(now), "k": "calls", "v": 1}, {"d": day_of(now), "k": "outbound", "v": 1}],
        }
        try:
            await self._db[CALLS].insert_one(doc)
            await self._on_call_created(doc, wait)
        except DuplicateKeyError:
            existing = await self._calls.find_one(call_id)
            if existing is None or existing["org_id"] != body.org_id or existing.get("to_number") != body.to_number:
                raise conflict("A different call already has this id", code="call_id_taken") from None
            return await self.outbound_context(call_id)
        return OutboundCallContext(call_id=call_id, agent=resolved, variables=body.variables,
                                   campaign_id=body.campaign_id, contact_id=body.contact_id)

    async def _caller_id(self, org_id: str, e164: str) -> tuple[dict[str, Any] | None, CarrierCredentials | None]:
        number = await self._numbers.of_org(org_id, e164)
        return number, (await self._carriers.decrypted(org_id, number["carrier"]) if number is not None else None)

    async def _resolve_for_org(self, agent_id: str, org_id: str) -> ResolvedAgent:
        try:
            return await self._resolve(agent_id, org_id)
        except ApiError:
            raise ApiError(422, "validation_error", "body.agent_id: no such agent in this organisation",
                           [ErrorDetail(path="body.agent_id", message="no such agent in this organisation")]) from None

    async def outbound_context(self, call_id: str) -> OutboundCallContext:
        call = await self._calls.find_one(call_id)
        if call is None or call.get("direction") != "outbound" or not call.get("agent_id"):
            raise not_found("Outbound call")
        # The version recorded when the call was placed: an edit during the campaign does not change a live call.
        loaded = await self._agents.load_for_call(call["agent_id"])
        if loaded is None or loaded[0]["org_id"] != call["org_id"]:
            raise not_found("Agent")
        agent, config = loaded
        version = call.get("agent_version") or agent["current_version"]
        if version != agent["current_version"]:
            pinned = await self._agents.load_version_config(agent["_id"], version)
            config = pinned or config
        resolved = ResolvedAgent(org_id=call["org_id"], agent_id=agent["_id"], agent_version=version,
                                 agent_name=agent["name"], config=config,
                                 secrets=await self._secrets.for_call(call["org_id"], config.secret_refs()),
                                 knowledge_version=await self._knowledge_version(call["org_id"], config))
        caller_id = await self._numbers.of_org(call["org_id"], call["from_number"])
        if caller_id is not None:
            resolved.phone_number_id = caller_id["_id"]
            resolved.phone_number = caller_id["number"]
            resolved.carrier_credentials = await self._carriers.decrypted(call["org_id"], caller_id["carrier"])
        return OutboundCallContext(call_id=call_id, agent=resolved, variables=call.get("variables") or {},
                                   campaign_id=call.get("campaign_id"), contact_id=call.get("contact_id"))
