"""Runs llama-cpp-python's OpenAI-compatible server with our settings, plus /health, /metrics and JSON logs.
Every other route needs the platform's service token (speech/common/service_guard.py)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from speech.common.logs import setup_logging
from speech.common.service_guard import ServiceTokenGuard, require_service_secret
from speech.llm import tool_turns
from speech.llm.config import LlmServerSettings

log = logging.getLogger("speech.llm")

REQUESTS = Counter("llm_requests_total", "HTTP requests by path and status", ["path", "status"])
FIRST_BYTE = Histogram(
    "llm_time_to_first_byte_seconds",
    "From a completion request to its first streamed byte (the first token for stream=true)",
    ["path"],
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
)
DURATION = Histogram("llm_request_seconds", "Whole request duration", ["path"])
_TIMED = ("/v1/chat/completions", "/v1/completions")


class CompletionMetrics:
    """ASGI middleware: times completions to their first body byte and to the end."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in _TIMED else "other"
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "first": False}

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and message.get("body") and not state["first"]:
                state["first"] = True
                if label != "other":
                    FIRST_BYTE.labels(label).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            REQUESTS.labels(label, str(state["status"])).inc()
            if label != "other":
                DURATION.labels(label).observe(time.perf_counter() - started)


class ToolNameOnce:
    """ASGI middleware: streamed tool calls name their function once, in the first delta, as OpenAI does.

    llama-cpp-python repeats the name in every delta of a tool call; OpenAI clients (Pipecat among them)
    concatenate the names they see and then look up `end_callend_call...`. Only stream events that carry
    `tool_calls` are rewritten."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        named: dict[int, str] = {}

        async def rewriting_send(message: dict[str, Any]) -> None:
            body = message.get("body") if message["type"] == "http.response.body" else None
            if body and b'"tool_calls": [' in body:
                message = {**message, "body": b"\n".join(_drop_repeated_names(line, named)
                                                          for line in body.split(b"\n"))}
            await send(message)

        await self.app(scope, receive, rewriting_send)


def _drop_repeated_names(line: bytes, named: dict[int, str]) -> bytes:
    if not line.startswith(b"data: {"):
        return line
    try:
        chunk = json.loads(line[6:])
        calls = chunk["choices"][0]["delta"].get("tool_calls") or []
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return line
    changed = False
    for call in calls:
        function = call.get("function") or {}
        name, index = function.get("name"), call.get("index", 0)
        if not name:
            continue
        if named.get(index) == name:
            function["name"] = None
            changed = True
        else:
            named[index] = name
    return b"data: " + json.dumps(chunk).encode() if changed else line


def build_app(settings: LlmServerSettings) -> FastAPI:
    # Imported here: llama_cpp loads its shared library on import.
    from llama_cpp.server import app as llama_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    secret = require_service_secret(settings.service_token_secret.get_secret_value(), "LLM server")
    model_path = settings.model_path()
    t0 = time.perf_counter()
    server_settings = ServerSettings(
        host=settings.llm_host,
        port=settings.llm_port,
        # Calls share one model: queue requests instead of cutting off the one that is streaming.
        interrupt_requests=False,
    )
    model_settings = ModelSettings(
        model=str(model_path),
        model_alias=settings.llm_model_alias,
        n_ctx=settings.llm_n_ctx,
        n_threads=settings.llm_n_threads,
        n_threads_batch=settings.llm_n_threads_batch,
        n_batch=settings.llm_n_batch,
        cache=settings.llm_cache,
        cache_type=settings.llm_cache_type,  # type: ignore[arg-type]
        cache_size=settings.llm_cache_size,
        logits_all=False,
        verbose=False,
    )
    app: FastAPI = llama_app.create_app(server_settings=server_settings, model_settings=[model_settings])
    llama = llama_app._llama_proxy() if llama_app._llama_proxy is not None else None  # noqa: SLF001
    if llama is not None:
        llama.create_completion("Hello", max_tokens=1)  # first-call set-up off the request path
    log.info(
        "LLM loaded",
        extra={"model": str(model_path), "alias": settings.llm_model_alias, "cache": settings.llm_cache,
               "n_ctx": settings.llm_n_ctx, "threads": settings.llm_n_threads,
               "threads_batch": settings.llm_n_threads_batch,
               "load_s": round(time.perf_counter() - t0, 2)},
    )

    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "model": settings.llm_model_alias, "prompt_cache": settings.llm_cache})

    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(ToolNameOnce)
    app.add_middleware(tool_turns.TextContent)
    app.add_middleware(CompletionMetrics)
    app.add_middleware(ServiceTokenGuard, secret=secret, server="LLM server",
                       static_key=settings.llm_server_api_key.get_secret_value() if settings.llm_server_api_key
                       else None)
    return app


def main() -> None:
    settings = LlmServerSettings()
    setup_logging("llm", settings.log_level, settings.log_json)
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.llm_host,
        port=settings.llm_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.llm_shutdown_grace_s),
    )
    uvicorn.Server(config).run()
