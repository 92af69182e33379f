"""Every request to a speech server (TTS, LLM, embeddings) needs the platform's service token: these servers spend
CPU/GPU on whoever asks and the TTS server keeps organisations' cloned voices, so being on the same network is not
enough. Only /health and /metrics stay open (probes and scrapers; keep them on the private network).

An ASGI middleware, so it also covers routes a library adds (llama-cpp-python's whole OpenAI API). The verified
caller (`core.service_auth.ServiceCaller`) is left in the request state for routes that need its organisation.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from core.service_auth import ServiceCaller, ServiceTokenError, bearer_token, verify_service_caller

OPEN_PATHS = frozenset({"/health", "/metrics"})
CALLER_STATE_KEY = "service_caller"


def require_service_secret(secret: str, server: str) -> str:
    """Refuses to start without SERVICE_TOKEN_SECRET: a speech server nobody can call is a misconfiguration, and
    one anybody can call is worse."""
    if not secret:
        raise SystemExit(f"{server}: SERVICE_TOKEN_SECRET is not set; every request needs a service token signed "
                         "with it (the same value as the backend's and the voice server's)")
    return secret


def caller_of(scope_state: Any) -> ServiceCaller:
    """The caller the guard verified (Starlette's `request.state`)."""
    caller: ServiceCaller = getattr(scope_state, CALLER_STATE_KEY)
    return caller


class ServiceTokenGuard:
    """`static_key`: also accepted (the LLM server's LLM_SERVER_API_KEY), for an operator whose clients send one fixed
    key to whichever OpenAI-compatible server LLM_BASE_URL names (vLLM in the GPU profile, this one on CPU)."""

    def __init__(self, app: Any, secret: str, server: str = "speech server", static_key: str | None = None) -> None:
        self.app = app
        self.secret = require_service_secret(secret, server)
        self.static_key = static_key

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        try:
            caller = verify_service_caller(self.secret, token)
        except ServiceTokenError:
            if not (self.static_key and token and secrets.compare_digest(token, self.static_key)):
                await self._refuse(scope, send)
                return
            caller = ServiceCaller("operator-key")
        scope.setdefault("state", {})[CALLER_STATE_KEY] = caller
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: dict[str, Any], send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "a service token is required"})
            return
        body = json.dumps({"error": {"message": "a service token is required (Authorization: Bearer <token>)",
                                     "type": "authentication_error", "param": None, "code": 401}}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
