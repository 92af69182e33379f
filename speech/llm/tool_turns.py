"""Makes the tool turns and `developer` messages of an OpenAI conversation readable to any GGUF chat template.

Clients (Pipecat among them) send the assistant's tool call as `{"role": "assistant", "tool_calls": [...]}` with no
`content`, others with `content: null`, and content may be a list of text parts. Chat templates written for plain
chat, SmolLM2's among them, concatenate `message['content']` as a string, so the completion after a tool result
failed with "'dict object' has no attribute 'content'" (and `null` was refused by llama-cpp-python's request
model with a 500). This ASGI middleware gives every message of a chat completion request text content before the
server reads it; the tool call itself stays in `tool_calls` for templates that render it.

`developer` is OpenAI's newer name for `system`, and Pipecat sends it mid-conversation (its prompt after a barge-in
that carried no words, its tool-change notes). llama-cpp-python's request model knows only the older roles and
refused the whole completion with a 500, so the call fell to its canned reply and ended in error. Such messages
reach the template as `system` ones.
"""

from __future__ import annotations

import json
from typing import Any


def text_content(content: Any) -> str:
    """The message's content as the string a template concatenates: None/missing -> "", text parts joined."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return str(content)


def readable(message: dict[str, Any]) -> dict[str, Any]:
    """The message with text content, and a `developer` message as the `system` one templates know."""
    role = "system" if message.get("role") == "developer" else message.get("role")
    return {**message, "role": role, "content": text_content(message.get("content"))}


def with_text_content(body: bytes) -> bytes:
    """The request body with every message readable (see `readable`); anything that is not such a request,
    unchanged."""
    try:
        request = json.loads(body)
        messages = request["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return body
    except (ValueError, KeyError, TypeError):
        return body  # the server answers it with its own 4xx
    request["messages"] = [readable(m) for m in messages]
    return json.dumps(request).encode()


class TextContent:
    """ASGI middleware over /v1/chat/completions: see the module docstring."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = with_text_content(b"".join(chunks))
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[dict[str, Any]], then: Any = None) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
