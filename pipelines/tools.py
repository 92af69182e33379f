"""The agent's tools: HTTP webhooks (JSON-schema arguments, timeout, filler phrase, headers from an organisation
secret), end_call, transfer_call.

A webhook's answer reaches the model only when it is JSON or text and at most MAX_RESPONSE_BYTES: anything else
(an HTML error page, a PDF, a huge dump) becomes a short error, so a misbehaving service cannot flood a small
model's context or make it read binary."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import FunctionCallResultProperties, TTSSpeakFrame
from pipecat.services.llm_service import FunctionCallParams, LLMService

from core.agent_config import AgentConfig, WebhookTool
from core.call_events import ToolInvoked
from core.schema_patterns import Re2Validator
from pipelines.control import CallControl, CallEventSink

MAX_RESULT_CHARS = 4000  # keep tool output from flooding a small model's context
MAX_RESPONSE_BYTES = 64 * 1024  # read no more than this of a webhook's body
_READABLE_TYPES = ("application/json", "text/plain", "application/problem+json")
# The model's arguments are checked off the event loop, with a bound on their size and on the time it may take, so
# no schema and no argument can stall the calls sharing this process (patterns run on RE2: core/schema_patterns).
MAX_ARGUMENT_CHARS = 16_000
VALIDATION_TIMEOUT_S = 1.0

Handler = Callable[[FunctionCallParams], Awaitable[None]]


@dataclass(frozen=True)
class ToolRegistration:
    schema: FunctionSchema
    handler: Handler
    timeout_s: float | None = None


@dataclass
class ToolContext:
    agent: AgentConfig
    call_id: str
    control: CallControl
    events: CallEventSink
    http: httpx.AsyncClient
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # by name: the agent's org secrets


def record_tool(ctx: ToolContext, name: str, ok: bool, started: float, detail: str,
                arguments: dict[str, Any] | None = None, status_code: int | None = None) -> None:
    args = json.dumps(arguments, default=str)[:2000] if arguments is not None else ""
    ctx.events.tool(ToolInvoked(call_id=ctx.call_id, name=name, ok=ok,
                                duration_ms=round((time.perf_counter() - started) * 1000, 1), detail=detail[:500],
                                arguments=args, status_code=status_code))


def secret_headers_for(ref: str | None, secrets: dict[str, str]) -> dict[str, str]:
    """The extra headers an organisation secret holds (a JSON object; the backend checked it on save). Raises
    ValueError naming the secret (never its value) when it is gone or no longer a JSON object of strings."""
    if not ref:
        return {}
    raw = secrets.get(ref)
    if raw is None:
        raise ValueError(f"secret {ref!r} is not available")
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise ValueError(f"secret {ref!r} is not a JSON object of headers")
    return {str(k): v for k, v in parsed.items()}


def spoken_answer(body: Any) -> str | None:
    """What a `speak_result="verbatim"` tool says: a text answer, or the "say" field of a JSON object."""
    say = body if isinstance(body, str) else body.get("say") if isinstance(body, dict) else None
    return say.strip()[:1000] or None if isinstance(say, str) else None


async def _read_body(resp: httpx.Response) -> tuple[Any, str | None]:
    """The answer for the model, or (None, why it was refused): JSON or text only, at most MAX_RESPONSE_BYTES."""
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        return None, f"response too large ({declared} bytes; limit {MAX_RESPONSE_BYTES})"
    kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _READABLE_TYPES:
        return None, f"unsupported content type {kind or 'none'!r} (JSON or text only)"
    raw = bytearray()
    async for chunk in resp.aiter_bytes():
        raw += chunk
        if len(raw) > MAX_RESPONSE_BYTES:
            return None, f"response too large (over {MAX_RESPONSE_BYTES} bytes)"
    text = raw.decode(resp.encoding or "utf-8", errors="replace")
    if kind == "text/plain":
        return text, None
    try:
        return json.loads(text), None
    except ValueError:
        return None, "response is not valid JSON"


def webhook_tool(tool: WebhookTool, ctx: ToolContext) -> ToolRegistration:
    schema_dict = tool.parameters.model_dump()
    validator = Re2Validator(schema_dict)

    async def handler(params: FunctionCallParams) -> None:
        started = time.perf_counter()
        args = dict(params.arguments or {})
        detail = await argument_problems(validator, args)
        if detail:
            record_tool(ctx, tool.name, False, started, f"invalid arguments: {detail}", args)
            await params.result_callback({"error": f"invalid arguments: {detail}"})
            return
        try:
            headers = secret_headers_for(tool.headers_secret_ref, ctx.secrets)
        except ValueError as exc:  # never the value: only which secret
            record_tool(ctx, tool.name, False, started, str(exc), args)
            await params.result_callback({"error": "the service is not configured correctly"})
            return
        if tool.filler_phrase:
            # Spoken while the request runs; kept out of the LLM context.
            await params.llm.push_frame(TTSSpeakFrame(tool.filler_phrase, append_to_context=False))
        request = (ctx.http.build_request("GET", str(tool.url), params=args, headers=headers, timeout=tool.timeout_s)
                   if tool.method == "GET" else
                   ctx.http.build_request("POST", str(tool.url), json=args, headers=headers, timeout=tool.timeout_s))
        try:
            resp = await ctx.http.send(request, stream=True)
            try:
                body, refused = await _read_body(resp)
            finally:
                await resp.aclose()
        except httpx.TimeoutException:
            record_tool(ctx, tool.name, False, started, f"timed out after {tool.timeout_s}s", args)
            await params.result_callback({"error": "the service did not answer in time"})
            return
        except httpx.HTTPError as exc:
            record_tool(ctx, tool.name, False, started, f"{type(exc).__name__}: {exc}", args)
            await params.result_callback({"error": "the service could not be reached"})
            return
        if refused is not None:
            record_tool(ctx, tool.name, False, started, f"HTTP {resp.status_code}: {refused}", args, resp.status_code)
            await params.result_callback({"error": "the service gave an answer that cannot be used"})
            return
        text = body if isinstance(body, str) else json.dumps(body)
        if len(text) > MAX_RESULT_CHARS:
            body = text[:MAX_RESULT_CHARS] + "…"
        ok = resp.is_success
        record_tool(ctx, tool.name, ok, started, f"HTTP {resp.status_code}", args, resp.status_code)
        say = spoken_answer(body) if ok and tool.speak_result == "verbatim" else None
        if say:
            await params.llm.push_frame(TTSSpeakFrame(say, append_to_context=True))
            await params.result_callback({"status": resp.status_code, "result": body},
                                         properties=FunctionCallResultProperties(run_llm=False))
            return
        await params.result_callback({"status": resp.status_code, "result": body} if ok
                                     else {"error": f"the service answered HTTP {resp.status_code}",
                                           "result": body})

    schema = FunctionSchema(name=tool.name, description=tool.description,
                            properties=schema_dict.get("properties", {}), required=schema_dict.get("required", []))
    return ToolRegistration(schema, handler, timeout_s=tool.timeout_s + 2.0)


async def argument_problems(validator: Any, args: dict[str, Any]) -> str:
    """What is wrong with the arguments ("" when nothing): checked in a worker thread, within a time bound."""
    if len(json.dumps(args, default=str)) > MAX_ARGUMENT_CHARS:
        return f"arguments longer than {MAX_ARGUMENT_CHARS} characters"

    def check() -> str:
        errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
        return "; ".join(e.message for e in errors[:3])

    try:
        return await asyncio.wait_for(asyncio.to_thread(check), VALIDATION_TIMEOUT_S)
    except TimeoutError:
        return f"checking them took longer than {VALIDATION_TIMEOUT_S:g}s"


def end_call_tool(ctx: ToolContext) -> ToolRegistration:
    async def handler(params: FunctionCallParams) -> None:
        started = time.perf_counter()
        await params.result_callback({"status": "ending the call"},
                                     properties=FunctionCallResultProperties(run_llm=False))
        record_tool(ctx, "end_call", True, started, "goodbye, then hang up")
        await ctx.control.end_call("agent_hangup", goodbye=ctx.agent.goodbye)

    schema = FunctionSchema(
        name="end_call",
        description=("Hang up the phone call. Use it when the conversation is finished or the caller asks to "
                     "end the call. A goodbye is spoken for you, so do not say goodbye yourself."),
        properties={}, required=[],
    )
    return ToolRegistration(schema, handler)


def transfer_tool(ctx: ToolContext) -> ToolRegistration:
    targets = {t.name: t for t in ctx.agent.transfer_targets}
    described = "; ".join(f"{t.name}: {t.description or t.mode + ' transfer'}" for t in targets.values())

    async def handler(params: FunctionCallParams) -> None:
        started = time.perf_counter()
        args = dict(params.arguments or {})
        target = targets.get(str(args.get("target", "")))
        if target is None:
            record_tool(ctx, "transfer_call", False, started, f"unknown target {args.get('target')!r}", args)
            await params.result_callback({"error": f"unknown target; choose one of {sorted(targets)}"})
            return
        reason = str(args.get("reason", ""))[:300]
        try:
            status = await ctx.control.transfer(
                target, announcement=f"Please hold while I transfer you to {target.name}.", brief=reason)
        except asyncio.CancelledError:
            # The carrier ends the media stream (and with it this pipeline) as it moves the call, often before its
            # REST answer is back; the call's end reason says how it went.
            record_tool(ctx, "transfer_call", True, started, f"{target.mode} to {target.name}: stream ended by the carrier",
                    args)
            raise
        ok = status == "transferring"
        record_tool(ctx, "transfer_call", ok, started, f"{target.mode} to {target.name}: {status}", args)
        await params.result_callback({"status": status},
                                     properties=FunctionCallResultProperties(run_llm=not ok))

    schema = FunctionSchema(
        name="transfer_call",
        description=f"Transfer the caller to a human. Targets: {described}.",
        properties={
            "target": {"type": "string", "enum": sorted(targets), "description": "Who to transfer to."},
            "reason": {"type": "string", "description": "One sentence on what the caller needs."},
        },
        required=["target"],
    )
    return ToolRegistration(schema, handler)


def build_tools(ctx: ToolContext) -> list[ToolRegistration]:
    tools = [webhook_tool(t, ctx) for t in ctx.agent.tools]
    if ctx.agent.enable_end_call:
        tools.append(end_call_tool(ctx))
    if ctx.agent.transfer_targets:
        tools.append(transfer_tool(ctx))
    return tools


def register_tools(llm: LLMService[Any], tools: list[ToolRegistration]) -> ToolsSchema | None:
    for t in tools:
        llm.register_function(t.schema.name, t.handler, timeout_secs=t.timeout_s)
    return ToolsSchema(standard_tools=[t.schema for t in tools]) if tools else None
