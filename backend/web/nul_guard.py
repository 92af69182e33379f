"""Refuses NUL characters in request bodies and query strings with a 422, before any route sees them.

JSON allows "\\u0000" inside strings and keys, MongoDB stores it, but PostgreSQL's jsonb cannot: with FerretDB on
PostgreSQL (the local default) such a value failed deep in a write with a 500, after earlier writes of the same
request may already have landed. No field of this API has a use for NUL, so it is refused at the door, the same way
for every database behind the backend."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.web.body_limits import send_error

# "\u0000" as an escape, i.e. preceded by an even number of backslashes ("\\u0000" is the text \u0000, not a NUL).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_MESSAGE = "NUL characters (\\u0000) are not allowed in request data"


class NulInBody(HTTPException):
    """An HTTPException, so FastAPI's body reading passes it on to the app's 422 handler (see BodyTooLarge)."""

    def __init__(self) -> None:
        super().__init__(422, _MESSAGE)


def _is_json(scope: Scope) -> bool:
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0].strip().lower()
    return content_type == b"application/json" or content_type.endswith(b"+json")


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b""):
            await send_error(scope, send, 422, "validation_error", _MESSAGE)
            return
        if not _is_json(scope):
            await self.app(scope, receive, send)
            return
        buffered: Message | None = None

        async def checked_receive() -> Message:
            # The whole body is read once (BodyLimitMiddleware, outside, caps it) and checked before the app parses it.
            nonlocal buffered
            if buffered is not None:
                return await receive()  # after the body: the disconnect message
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            if _JSON_NUL.search(body):
                raise NulInBody()
            buffered = {"type": "http.request", "body": body, "more_body": False}
            return buffered

        await self.app(scope, checked_receive, send)
