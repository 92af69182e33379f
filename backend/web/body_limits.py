"""Request body caps, enforced while the body streams in: a declared Content-Length over the cap gets 413 before a
byte is read, and a body that grows past it (chunked, or lying about its length) is cut off with 413 as soon as it
does. Without this, any client could make the backend buffer, parse or spool to disk as much as it liked before a
route's own size check ran.

Caps are per route prefix (CSV imports get their own, larger one); everything else gets the JSON default."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body reading passes it on (it turns other errors into 400s) and the app's
    error handler answers 413 in the usual error shape; raised outside a route, the middleware answers itself."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


@dataclass(frozen=True)
class BodyLimit:
    """`path_suffix`, when set, narrows the prefix to paths ending with it (e.g. .../contacts under /campaigns)."""

    prefix: str
    max_bytes: int
    path_suffix: str = ""

    def matches(self, path: str) -> bool:
        return path.startswith(self.prefix) and path.endswith(self.path_suffix)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_max_bytes: int, limits: list[BodyLimit]) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes
        self.limits = limits

    def _limit_for(self, path: str) -> int:
        return next((lim.max_bytes for lim in self.limits if lim.matches(path)), self.default_max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(scope, send, 413, "payload_too_large", f"request body is larger than {limit} bytes")
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_error(scope, send, 413, "payload_too_large", f"request body is larger than {limit} bytes")


async def send_error(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """An error answered by a middleware itself (outside any route), in the app's usual error shape."""
    request_id = (scope.get("state") or {}).get("request_id")
    body = json.dumps({"error": {"code": code, "message": message, "details": [], "request_id": request_id}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
