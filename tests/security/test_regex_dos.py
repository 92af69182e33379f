"""Finding 6: a tenant's JSON-schema `pattern` must not freeze the voice server's event loop.

The attacker saves a webhook tool whose argument pattern is `^(a+)+$` and gets the model to call it with
"aaaa…a!": with a backtracking engine that check runs for minutes on the event loop every call on the replica
shares. The check runs here in a process of its own that the test can kill, so the test ends either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from backend_testkit import register

EVIL = "^(a+)+$"


# One tool call, as a call makes it: in its own process, because a backtracking match holds the interpreter lock
# (a thread could not even be abandoned), which is exactly how it freezes every call on a replica.
TOOL_CALL = """
import asyncio, sys
import httpx
from core.agent_config import AgentConfig, WebhookTool
from pipelines.tools import ToolContext, build_tools

class Sink:
    def tool(self, event): pass

class Params:
    arguments = {"code": "a" * 40 + "!"}
    class llm:
        @staticmethod
        async def push_frame(frame): pass
    async def result_callback(self, result, *, properties=None):
        print("RESULT", result, flush=True)

async def main():
    tool = WebhookTool(name="lookup", description="d", url="http://127.0.0.1:9/x", filler_phrase=None,
                       parameters={"type": "object", "properties": {"code": {"type": "string", "pattern": sys.argv[1]}},
                                   "required": ["code"]})
    async with httpx.AsyncClient() as http:
        ctx = ToolContext(agent=AgentConfig(tools=[tool]), call_id="c1", control=None, events=Sink(), http=http)
        await build_tools(ctx)[0].handler(Params())

asyncio.run(main())
"""


def test_a_catastrophic_pattern_does_not_stall_a_call() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    try:
        done = subprocess.run([sys.executable, "-c", TOOL_CALL, EVIL], capture_output=True, text=True, timeout=60,
                              env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("validating one tool argument froze its event loop for over a minute")
    assert "RESULT" in done.stdout and "invalid arguments" in done.stdout, done.stdout + done.stderr[-2000:]


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
