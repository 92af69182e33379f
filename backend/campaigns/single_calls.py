"""One outbound call placed through the API (`POST /api/v1/calls`), e.g. from a CRM: the same rules as a campaign
dial (the organisation's do-not-call list, an optional calling window, the organisation's concurrency cap) and a
clear 4xx for each refusal, checked before anything is stored or dialled.

The call holds one of the organisation's dialer slots (coordination.py) until it ends, so API calls and campaign
calls together never exceed the organisation's cap: the dialer counts this slot like its own.

An `Idempotency-Key` makes the call id deterministic per organisation: a retried request returns the first call and
never dials twice (a unique insert decides, so two concurrent retries cannot both dial)."""

from __future__ import annotations

import hashlib
import logging

from pydantic import Field, HttpUrl, model_validator
from pymongo.errors import DuplicateKeyError

from backend.campaigns.backend_sink import BackendCallSink
from backend.campaigns.clock import Clock
from backend.campaigns.collections import CALL_REQUESTS, DNC, ORG_SETTINGS, dnc_id
from backend.campaigns.coordination import Coordination, api_attempt_id, org_scope
from backend.campaigns.models import CallingWindows
from backend.campaigns.settings import CampaignSettingsMixin
from backend.campaigns.windows import compile_windows, window_state
from backend.db.collections import Db
from backend.db.ids import new_id
from backend.errors import ApiError, ErrorDetail
from backend.models.common import ApiModel
from backend.models.internal import OutboundCallCreate
from backend.security.permissions import Principal
from backend.services.container import Services
from backend.services.webhooks import call_hook_id
from core.agent_config import E164, VariableName
from telephony.base import CarrierError, OutboundCallRequest
from telephony.registry import CarrierClients, carrier_named

log = logging.getLogger(__name__)


class CallRequest(ApiModel):
    agent_id: str = Field(min_length=1, max_length=64)
    from_number: E164 = Field(description="A number of this organisation (its carrier places the call).")
    to_number: E164
    variables: dict[VariableName, str] = Field(default_factory=dict, max_length=100,
                                               description="Fill the agent's {{variables}} for this call.")
    calling_window: CallingWindows | None = Field(
        default=None, description="When given, the call is refused (409) outside these hours.")
    ring_timeout_s: int = Field(default=30, ge=5, le=120)
    webhook_id: str | None = Field(default=None, max_length=64,
                                   description="A webhook of this organisation that gets this call's events "
                                               "(call.started, call.ended, call.transcript, call.analyzed) whatever "
                                               "it subscribes to.")
    webhook_url: HttpUrl | None = Field(
        default=None, description="A URL that gets this call's events (call.started, call.ended, call.transcript, "
                                  "call.analyzed), signed with the `webhook_secret` of the response. Private and "
                                  "loopback addresses are refused unless the operator allows them.")

    @model_validator(mode="after")
    def _one_webhook(self) -> CallRequest:
        if self.webhook_id and self.webhook_url:
            raise ValueError("give webhook_id or webhook_url, not both")
        return self


class CallRequestOut(ApiModel):
    call_id: str
    status: str = "queued"
    carrier_call_id: str | None = None
    replayed: bool = Field(default=False, description="True when this Idempotency-Key placed the call before.")
    webhook_secret: str | None = Field(default=None, description="With a webhook_url: the secret that signs its "
                                                                 "deliveries (X-Voiceagent-Signature).")


def _refused(status: int, code: str, message: str, path: str | None = None) -> ApiError:
    details = [ErrorDetail(path=path, message=message)] if path else None
    return ApiError(status, code, message, details)


class SingleCallService:
    def __init__(self, services: Services, settings: CampaignSettingsMixin, clock: Clock, calls: BackendCallSink,
                 carriers: CarrierClients, answer_base_url: str, coord: Coordination) -> None:
        self._services = services
        self._coord = coord
        self._db: Db = services.db
        self._settings = settings
        self._clock = clock
        self._calls = calls
        self._carriers = carriers
        self._answer_base = answer_base_url.split(",")[0].strip().rstrip("/")

    async def place(self, principal: Principal, body: CallRequest, idempotency_key: str | None
                    ) -> CallRequestOut:
        org = principal.org_id
        call_id = (hashlib.sha256(f"{org}:{idempotency_key}".encode()).hexdigest()[:32] if idempotency_key
                   else new_id())
        replay = await self._replay(principal, call_id, body)
        if replay is not None:
            return replay
        loaded = await self._services.agents.load_for_call(body.agent_id)
        if loaded is None or loaded[0]["org_id"] != org:
            raise _refused(422, "validation_error", "no such agent in this organisation", "body.agent_id")
        await self._check_rules(org, body)
        if body.webhook_id and not await self._services.webhooks.is_active(org, body.webhook_id):
            raise _refused(422, "validation_error", "no active webhook with this id in this organisation",
                           "body.webhook_id")
        if body.webhook_url is not None:
            self._services.webhooks.check_url(str(body.webhook_url), "body.webhook_url")
        number = await self._services.numbers.by_number(body.from_number)
        if number is None or number["org_id"] != org:
            raise _refused(422, "validation_error", "not a number of this organisation", "body.from_number")
        creds = await self._services.carriers.decrypted(org, number["carrier"])
        if creds is None:
            raise _refused(422, "no_carrier_credentials",
                           f"the organisation has no {number['carrier']} credentials for this number")
        hook_id = call_hook_id(call_id) if body.webhook_url is not None else body.webhook_id
        try:
            await self._db[CALL_REQUESTS].insert_one({"_id": call_id, "org_id": org, "to_number": body.to_number,
                                                      "webhook_id": hook_id, "created_at": self._clock.now()})
        except DuplicateKeyError:
            replay = await self._replay(principal, call_id, body)
            if replay is not None:
                return replay
            raise _refused(409, "idempotency_key_in_use", "a request with this Idempotency-Key is in progress") \
                from None
        lifetime_s = body.ring_timeout_s + loaded[1].max_duration_s + 120
        await self._take_org_slot(org, call_id, lifetime_s)
        try:
            secret = (await self._services.webhooks.create_for_call(principal, call_id, str(body.webhook_url))
                      if body.webhook_url is not None else None)
            ctx = await self._services.call_routing.create_outbound_call(OutboundCallCreate(
                org_id=org, agent_id=body.agent_id, from_number=body.from_number, to_number=body.to_number,
                carrier=number["carrier"], call_id=call_id, variables=dict(body.variables)))
        except Exception:
            # Not dialled: the key may be retried, and the slot is free again.
            await self._coord.release_attempt_slots(api_attempt_id(call_id))
            await self._db[CALL_REQUESTS].delete_one({"_id": call_id})
            raise
        carrier = carrier_named(number["carrier"])
        detect = ctx.agent.config.voicemail.detect_in_call
        request = OutboundCallRequest(
            to_number=body.to_number, from_number=body.from_number,
            answer_url=carrier.answer_url(self._answer_base, call_id),
            status_callback_url=f"{carrier.path(self._answer_base, carrier.status_path)}?call_id={call_id}",
            status_events=["answered", "completed"], ring_timeout_s=body.ring_timeout_s,
            time_limit_s=ctx.agent.config.max_duration_s + 60,
            # In-call voicemail detection also hears the carrier's AMD verdict (the voice server's /amd route).
            machine_detection="enable" if detect else "off",
            machine_detection_url=f"{carrier.path(self._answer_base, 'amd')}?call_id={call_id}" if detect else None)
        try:
            result = await self._carriers.for_credentials(creds).create_call(request)
        except CarrierError as exc:
            await self._coord.release_attempt_slots(api_attempt_id(call_id))
            await self._calls.ended(call_id, "failed", self._clock.now(), f"carrier refused the call: {exc}",
                                    f"api-call-failed:{call_id}")
            await self._db[CALL_REQUESTS].update_one({"_id": call_id}, {"$set": {"failed": str(exc)[:300]}})
            raise _refused(502, "carrier_error", f"the carrier refused the call: {exc}") from None
        await self._db[CALL_REQUESTS].update_one({"_id": call_id},
                                                 {"$set": {"carrier_call_id": result.carrier_call_id}})
        return CallRequestOut(call_id=call_id, carrier_call_id=result.carrier_call_id, webhook_secret=secret)

    async def _replay(self, principal: Principal, call_id: str, body: CallRequest) -> CallRequestOut | None:
        org = principal.org_id
        doc = await self._db[CALL_REQUESTS].find_one({"_id": call_id})
        if doc is None or "carrier_call_id" not in doc and "failed" not in doc:
            return None
        if doc["org_id"] != org or doc["to_number"] != body.to_number:
            raise _refused(409, "idempotency_key_reused", "this Idempotency-Key was used for a different call")
        if "failed" in doc:
            raise _refused(502, "carrier_error", f"the carrier refused the call: {doc['failed']}")
        secret = (await self._services.webhooks.create_for_call(principal, call_id, str(body.webhook_url))
                  if body.webhook_url is not None and doc.get("webhook_id") == call_hook_id(call_id) else None)
        return CallRequestOut(call_id=call_id, carrier_call_id=doc["carrier_call_id"], replayed=True,
                              webhook_secret=secret)

    async def _check_rules(self, org: str, body: CallRequest) -> None:
        if await self._db[DNC].find_one({"_id": dnc_id(org, body.to_number)}, {"_id": 1}):
            raise _refused(409, "do_not_call", "the number is on the organisation's do-not-call list",
                           "body.to_number")
        if body.calling_window is not None:
            is_open, until = window_state(self._clock.now(), body.calling_window.timezone,
                                          compile_windows(body.calling_window))
            if not is_open:
                when = f"; it opens at {until.isoformat()}" if until else ""
                raise _refused(409, "outside_calling_window", f"outside the calling window{when}",
                               "body.calling_window")

    async def _take_org_slot(self, org: str, call_id: str, lifetime_s: int) -> None:
        """One of the organisation's slots, the same ones the dialer takes for campaign calls; released when the
        call ends (container's call.ended handler), or by a dialer's reaper if that release was lost."""
        settings = await self._db[ORG_SETTINGS].find_one({"_id": org})
        cap = int((settings or {}).get("max_concurrent_calls") or self._settings.campaign_org_max_concurrent_calls)
        holder = {"attempt_id": api_attempt_id(call_id), "api_call_id": call_id, "org_id": org,
                  "owner": "api", "lifetime_s": lifetime_s}
        if await self._coord.acquire_slot(org_scope(org), cap, holder) is None:
            await self._db[CALL_REQUESTS].delete_one({"_id": call_id})
            live = (await self._coord.slots_in_use([org_scope(org)]))[org_scope(org)]
            raise ApiError(429, "org_concurrency_limit",
                           f"the organisation already has {live} live outbound calls (its cap is {cap})")
