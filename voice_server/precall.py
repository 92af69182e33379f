"""The pre-call lookup: before the greeting, ask the agent's context webhook (the business's CRM) about the caller,
and fill {{variables}} in the prompt and greeting with its answer ("Hello Priya, about your Thursday visit...").

Bounded by the webhook's `timeout_ms` (800 ms by default): a slow or failing CRM delays the answer by at most that,
and the call goes on with the variables it already had. The request goes through the egress guard (the voice
server's `tenant_http`, core/egress.py): a context webhook cannot reach the platform's internal network. Only a JSON object is used; keys must be variable names
and values become short strings (core/agent_config.py `render` cleans them again)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

import httpx

from core.call_events import ResolvedAgent, ToolInvoked
from pipelines.tools import secret_headers_for

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_BODY_BYTES = 16 * 1024
MAX_VARIABLES = 50


@dataclass(frozen=True)
class Lookup:
    variables: dict[str, str]
    ok: bool
    duration_ms: float
    detail: str

    def event(self, call_id: str) -> ToolInvoked:
        """Shown with the call's tool calls, so the call detail says whether the lookup answered in time."""
        return ToolInvoked(event_id=f"{call_id}-context"[:64], call_id=call_id, name="context_webhook", ok=self.ok,
                           duration_ms=self.duration_ms, detail=self.detail[:500])


async def lookup_context(http: httpx.AsyncClient, agent: ResolvedAgent, *, call_id: str, direction: str,
                         from_number: str, to_number: str, variables: dict[str, str]) -> Lookup | None:
    hook = agent.config.context_webhook
    if hook is None:
        return None
    started = time.perf_counter()

    def done(ok: bool, detail: str, found: dict[str, str] | None = None) -> Lookup:
        return Lookup(found or {}, ok, round((time.perf_counter() - started) * 1000, 1), detail)

    try:
        headers = secret_headers_for(hook.headers_secret_ref, agent.secret_values())
    except ValueError as exc:
        return done(False, str(exc))
    body = {"call_id": call_id, "direction": direction, "from_number": from_number, "to_number": to_number,
            "agent_id": agent.agent_id, "variables": variables}
    try:
        async with asyncio.timeout(hook.timeout_ms / 1000):
            resp = await http.post(str(hook.url), json=body, headers=headers, timeout=hook.timeout_ms / 1000)
    except (TimeoutError, httpx.TimeoutException):
        return done(False, f"no answer within {hook.timeout_ms} ms; the call went on without it")
    except httpx.HTTPError as exc:
        return done(False, f"{type(exc).__name__}: the call went on without it")
    if not resp.is_success:
        return done(False, f"HTTP {resp.status_code}", None)
    if len(resp.content) > MAX_BODY_BYTES:
        return done(False, f"answer over {MAX_BODY_BYTES} bytes")
    try:
        parsed = resp.json()
    except ValueError:
        return done(False, "answer is not JSON")
    if not isinstance(parsed, dict):
        return done(False, "answer is not a JSON object")
    found = {k: str(v)[:200] for k, v in parsed.items()
             if _NAME.match(k) and isinstance(v, str | int | float | bool)}
    found = dict(list(found.items())[:MAX_VARIABLES])
    return done(True, f"HTTP {resp.status_code}: {len(found)} variables", found)
