"""The answer flow, the same for every carrier: find the agent, prepare the call (token, greeting), report it; and
the record of calls that never reached a media session here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

from core.call_events import CallEnded, CallStarted, CarrierCredentials, EndReason, ResolvedAgent
from pipelines.streaming import StreamingAudio
from telephony.base import CarrierName
from telephony.call_token import CallClaims, mint_call_token
from voice_server.precall import Lookup, lookup_context
from voice_server.prepared import PreparedCall
from voice_server.state import VoiceApp
from voice_server.warmup import warm_llm

log = logging.getLogger(__name__)

_CALL_ID_NAMESPACE = uuid.UUID("5b0d6f52-8f3a-4a52-9f0e-6c1c1f0b7a31")


def inbound_call_id(carrier: CarrierName, carrier_call_id: str) -> str:
    """Deterministic, so a webhook the carrier retries maps to the same call."""
    return uuid.uuid5(_CALL_ID_NAMESPACE, f"{carrier}:{carrier_call_id}").hex


def public_url(app: VoiceApp, request: Request) -> str:
    """The URL the carrier called, as seen from outside (never the internal one behind a proxy)."""
    query = request.url.query
    return f"{app.settings.voice_public_base_url}{request.url.path}" + (f"?{query}" if query else "")


@dataclass
class IncomingCall:
    carrier: CarrierName
    carrier_call_id: str
    from_number: str
    to_number: str
    outbound_call_id: str | None = None  # our id, when the dialer placed the call


@dataclass
class Resolution:
    status: Literal["ok", "unknown", "unavailable"]
    call_id: str
    direction: Literal["inbound", "outbound"]
    agent: ResolvedAgent | None = None
    variables: dict[str, str] = field(default_factory=dict)
    campaign_id: str | None = None
    contact_id: str | None = None
    lookup: Lookup | None = None  # the pre-call context webhook's answer, when the agent has one

    @property
    def credentials(self) -> CarrierCredentials | None:
        creds = self.agent.carrier_credentials if self.agent else None
        return creds


async def resolve(app: VoiceApp, call: IncomingCall) -> Resolution:
    res = await _match(app, call)
    if res.agent is not None and res.agent.config.context_webhook is not None:
        res.lookup = await lookup_context(app.tenant_http, res.agent, call_id=res.call_id, direction=res.direction,
                                          from_number=call.from_number, to_number=call.to_number,
                                          variables=res.variables)
        if res.lookup is not None:
            # The call's own variables (campaign contact, API request) win over the lookup's.
            res.variables = {**res.lookup.variables, **res.variables}
    return res


async def _match(app: VoiceApp, call: IncomingCall) -> Resolution:
    if call.outbound_call_id:
        match = await app.agents.find(outbound_call_id=call.outbound_call_id)
        call_id = call.outbound_call_id
        if match.agent is not None:
            return Resolution("ok", call_id, "outbound", agent=match.agent, variables=match.variables,
                              campaign_id=match.campaign_id, contact_id=match.contact_id)
        return Resolution(match.status, call_id, "outbound")
    call_id = inbound_call_id(call.carrier, call.carrier_call_id)
    match = await app.agents.find(numbers=(call.to_number,))
    return Resolution(match.status, call_id, "inbound", agent=match.agent)


def prepare_call(app: VoiceApp, call: IncomingCall, res: Resolution, out_sample_rate: int) -> str:
    """Mints the media token, starts greeting synthesis, reports the call. Returns the token."""
    assert res.agent is not None
    agent = res.agent
    claims = CallClaims(
        call_id=res.call_id, carrier=call.carrier, carrier_call_id=call.carrier_call_id, direction=res.direction,
        org_id=agent.org_id, agent_id=agent.agent_id, from_number=call.from_number, to_number=call.to_number,
    )
    settings = app.settings
    token = mint_call_token(settings.call_token_secret.get_secret_value(), claims, settings.call_token_ttl_s)
    system_prompt, greeting = agent.config.render(res.variables)
    prepared = PreparedCall(claims=claims, agent=agent, variables=res.variables, out_sample_rate=out_sample_rate,
                            greeting_text=greeting, campaign_id=res.campaign_id, contact_id=res.contact_id)
    tts_config = agent.config.tts
    speech = app.call_services.speech

    def synthesize(text: str) -> tuple[StreamingAudio, asyncio.Task[None]]:
        return speech.synthesize_streaming(tts_config, text, out_sample_rate, agent.org_id)

    async def warm_prompt() -> None:
        await warm_llm(app.llm_pool, app.settings, agent, system_prompt, greeting)

    # Only the platform's TTS server is asked ahead: an agent's own endpoint is reached in the call, through the
    # egress guard (the greeting is synthesised live there).
    app.prepared.add(prepared, synthesize if speech.is_platform(tts_config) else None,
                     warm_prompt if settings.llm_warmup else None)
    app.calls.remember_credentials(res.call_id, agent.carrier_credentials)
    app.outbox.emit(CallStarted(
        event_id=f"{res.call_id}-started"[:64], call_id=res.call_id, org_id=agent.org_id,
        agent_id=agent.agent_id, agent_version=agent.agent_version, direction=res.direction, carrier=call.carrier,
        carrier_call_id=call.carrier_call_id, from_number=call.from_number, to_number=call.to_number,
        campaign_id=res.campaign_id, contact_id=res.contact_id, voice_server_id=settings.voice_server_id,
    ))
    if res.lookup is not None:
        app.outbox.emit(res.lookup.event(res.call_id))
    return token


def record_rejected_call(app: VoiceApp, call: IncomingCall, res: Resolution,
                         reason: Literal["error", "busy"], detail: str) -> None:
    """A refused call (lookup failure, draining, at capacity) is still a call: report it, with the reason."""
    org_id = res.agent.org_id if res.agent else ""
    app.outbox.emit(CallStarted(
        event_id=f"{res.call_id}-started"[:64], call_id=res.call_id, org_id=org_id, direction=res.direction,
        carrier=call.carrier, carrier_call_id=call.carrier_call_id, from_number=call.from_number,
        to_number=call.to_number, voice_server_id=app.settings.voice_server_id,
    ))
    app.outbox.emit(CallEnded(event_id=f"{res.call_id}-ended"[:64], call_id=res.call_id, end_reason=reason,
                              duration_s=0.0, detail=detail[:1000]))


def record_unanswered(app: VoiceApp, call_id: str, reason: EndReason, detail: str) -> None:
    """A call that ended without a media session here (busy, no answer...). Same event id as a session's end,
    so the backend keeps whichever arrives first."""
    app.outbox.emit(CallEnded(event_id=f"{call_id}-ended"[:64], call_id=call_id, end_reason=reason,
                              duration_s=0.0, detail=detail[:1000]))
