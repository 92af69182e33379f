"""The one way the voice server finds the agent (and so the carrier credentials) behind a call: at the answer
webhook, when a media socket opens on a replica that did not answer the call, and when a status callback must be
checked against the account's signature."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.call_events import ResolvedAgent
from voice_server.backend_client import BackendClient, BackendRejected, BackendUnavailable

log = logging.getLogger(__name__)


@dataclass
class AgentMatch:
    status: Literal["ok", "unknown", "unavailable"]
    agent: ResolvedAgent | None = None
    variables: dict[str, str] = field(default_factory=dict)
    campaign_id: str | None = None
    contact_id: str | None = None


class AgentLookup:
    def __init__(self, backend: BackendClient) -> None:
        self._backend = backend

    async def find(self, *, outbound_call_id: str | None = None, agent_id: str | None = None,
                   numbers: Sequence[str] = (), carrier: str | None = None) -> AgentMatch:
        """Tries in order: the dialer's context of an outbound call, the agent by id, the agent on each number
        (whose credentials are for `carrier`, when given). `unavailable` when the backend cannot answer."""
        try:
            if outbound_call_id:
                ctx = await self._backend.outbound_context(outbound_call_id)
                if ctx is not None:
                    return AgentMatch("ok", ctx.agent, dict(ctx.variables), ctx.campaign_id, ctx.contact_id)
            if agent_id:
                agent = await self._backend.agent_by_id(agent_id)
                return AgentMatch("ok", agent) if agent is not None else AgentMatch("unknown")
            for number in numbers:
                agent = await self._backend.agent_by_number(number) if number else None
                creds = agent.carrier_credentials if agent is not None else None
                if agent is not None and (carrier is None or (creds is not None and creds.carrier == carrier)):
                    return AgentMatch("ok", agent)
        except (BackendUnavailable, BackendRejected) as exc:
            log.error("agent lookup (call %s, agent %s, numbers %s) unavailable: %s", outbound_call_id, agent_id,
                      list(numbers), exc)
            return AgentMatch("unavailable")
        return AgentMatch("unknown")
