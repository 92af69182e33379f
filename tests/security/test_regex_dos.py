"""Finding 6: a tenant's JSON-schema `pattern` must not freeze the voice server's event loop.

The attacker saves a webhook tool whose argument pattern is `^(a+)+$` and gets the model to call it with
"aaaa…a!": with a backtracking engine that check runs for minutes on the event loop every call on the replica
shares. The check runs here in a thread we can give up on, so the test ends either way."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from backend_testkit import register

from core.agent_config import AgentConfig, WebhookTool
from pipelines.tools import ToolContext, build_tools

EVIL = "^(a+)+$"


def _run_tool_in_thread(tool: WebhookTool, arguments: dict[str, Any], results: list[Any]) -> threading.Thread:
    class Sink:
        def tool(self, event: Any) -> None: ...

    class Params:
        def __init__(self) -> None:
            self.arguments = arguments

        class llm:  # noqa: N801 (the attribute Pipecat's params carry)
            @staticmethod
            async def push_frame(frame: Any) -> None: ...

        async def result_callback(self, result: Any, *, properties: Any = None) -> None:
            results.append(result)

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            ctx = ToolContext(agent=AgentConfig(tools=[tool]), call_id="c1", control=None,  # type: ignore[arg-type]
                              events=Sink(), http=http)  # type: ignore[arg-type]
            await build_tools(ctx)[0].handler(Params())  # type: ignore[arg-type]

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


def test_a_catastrophic_pattern_does_not_stall_a_call() -> None:
    tool = WebhookTool(name="lookup", description="d", url="http://127.0.0.1:9/x",  # type: ignore[arg-type]
                       parameters={"type": "object", "properties": {"code": {"type": "string", "pattern": EVIL}},
                                   "required": ["code"]}, filler_phrase=None)
    results: list[Any] = []
    thread = _run_tool_in_thread(tool, {"code": "a" * 40 + "!"}, results)
    thread.join(30)  # a backtracking engine needs about 2^40 steps here: far beyond this
    assert not thread.is_alive(), "validating one tool argument froze its event loop"
    assert results and "invalid arguments" in results[0]["error"], results


async def test_patterns_that_need_backtracking_are_refused_when_saved(client: httpx.AsyncClient) -> None:
    owner = await register(client, "regex")
    for schema in ({"type": "string", "pattern": r"^(a)\1$"},  # a backreference: no linear-time engine runs it
                   {"type": "string", "pattern": r"^(?=a)a$"}):  # lookahead
        tool = {"name": "t", "description": "d", "url": "https://tools.example.com/t",
                "parameters": {"type": "object", "properties": {"x": schema}}}
        resp = await client.post("/api/v1/agents", json={"name": "regex", "config": {"tools": [tool]}},
                                 headers=owner.headers)
        assert resp.status_code == 422, resp.text
    tool = {"name": "t", "description": "d", "url": "https://tools.example.com/t",
            "parameters": {"type": "object", "properties": {}, "patternProperties": {"^(a+)+$": {}}}}
    resp = await client.post("/api/v1/agents", json={"name": "regex", "config": {"tools": [tool]}},
                             headers=owner.headers)
    assert resp.status_code == 422, resp.text
