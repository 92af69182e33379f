"""The agent's tools (pipelines/tools.py) on their own: a webhook tool against a real HTTP server, and end_call."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from stack_helpers import LocalServer

from core.agent_config import AgentConfig, WebhookTool
from pipelines.tools import ToolContext, build_tools


class RecordingControl:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str | None]] = []
        self.tools: list[Any] = []

    async def end_call(self, reason: str, goodbye: str | None, detail: str = "") -> None:
        self.ended.append((reason, goodbye))

    async def transfer(self, target: Any, announcement: str, brief: str) -> str:
        return "transferring"

    async def hand_off_agent(self, agent_id: str) -> None:
        return None

    def turn(self, event: Any) -> None: ...

    def tool(self, event: Any) -> None:
        self.tools.append(event)

    def timeline_ms(self, monotonic_s: float | None = None) -> int:
        return 0


class FakeParams:
    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments
        self.results: list[tuple[Any, Any]] = []
        self.pushed: list[Any] = []
        outer = self

        class _LLM:
            async def push_frame(self, frame: Any) -> None:
                outer.pushed.append(frame)

        self.llm = _LLM()

    async def result_callback(self, result: Any, *, properties: Any = None) -> None:
        self.results.append((result, properties))


async def test_webhook_tool_validates_arguments_speaks_a_filler_and_times_out() -> None:
    app = FastAPI()

    @app.post("/slots")
    async def slots(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("date") == "slow":
            await asyncio.sleep(2)
        return {"slots": ["9:00", "14:00"], "date": body["date"]}

    async with LocalServer(app) as server, httpx.AsyncClient() as http:
        tool = WebhookTool(name="check_slots", description="Free slots on a date", url=f"{server.url}/slots",
                           parameters={"type": "object", "properties": {"date": {"type": "string"}},
                                       "required": ["date"]}, timeout_s=0.5, filler_phrase="One moment.")
        control = RecordingControl()
        ctx = ToolContext(agent=AgentConfig(tools=[tool]), call_id="c1", control=control,  # type: ignore[arg-type]
                          events=control, http=http)  # type: ignore[arg-type]
        handler = build_tools(ctx)[0].handler

        bad = FakeParams({"date": 5})
        await handler(bad)  # type: ignore[arg-type]
        assert "invalid arguments" in bad.results[0][0]["error"] and not bad.pushed

        good = FakeParams({"date": "2030-01-02"})
        await handler(good)  # type: ignore[arg-type]
        assert good.results[0][0]["result"]["slots"] == ["9:00", "14:00"]
        assert good.pushed[0].text == "One moment." and good.pushed[0].append_to_context is False

        slow = FakeParams({"date": "slow"})
        await handler(slow)  # type: ignore[arg-type]
        assert "in time" in slow.results[0][0]["error"]
    assert [t.ok for t in control.tools] == [False, True, False]


async def test_end_call_tool_asks_the_call_to_say_goodbye_and_hang_up() -> None:
    control = RecordingControl()
    async with httpx.AsyncClient() as http:
        ctx = ToolContext(agent=AgentConfig(goodbye="Bye now!"), call_id="c1", control=control,  # type: ignore[arg-type]
                          events=control, http=http)  # type: ignore[arg-type]
        end_call = next(t for t in build_tools(ctx) if t.schema.name == "end_call")
        params = FakeParams({})
        await end_call.handler(params)  # type: ignore[arg-type]
    assert control.ended == [("agent_hangup", "Bye now!")]
    assert params.results[0][1].run_llm is False


async def test_webhook_tool_sends_secret_headers_and_refuses_unusable_answers() -> None:
    """Headers come from the organisation secret the tool names; an HTML page, a binary body or an answer over
    the size limit never reaches the model; the event records the arguments and the HTTP status."""
    from fastapi.responses import PlainTextResponse, Response

    from pipelines.tools import MAX_RESPONSE_BYTES

    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.post("/{kind}")
    async def answer(kind: str, body: dict[str, Any], request: Any = None) -> Any:
        return {"ok": True}

    @app.middleware("http")
    async def capture(request: Any, call_next: Any) -> Any:
        seen.append(dict(request.headers))
        kind = request.url.path.strip("/")
        if kind == "html":
            return Response("<html>error</html>", media_type="text/html")
        if kind == "binary":
            return Response(b"\x00\x01", media_type="application/octet-stream")
        if kind == "huge":
            return PlainTextResponse("x" * (MAX_RESPONSE_BYTES + 10))
        return await call_next(request)

    async with LocalServer(app) as server, httpx.AsyncClient() as http:
        def tool(kind: str, ref: str | None = "crm") -> WebhookTool:
            return WebhookTool(name=f"t_{kind}", description="d", url=f"{server.url}/{kind}",
                               parameters={"type": "object", "properties": {"q": {"type": "string"}}},
                               filler_phrase=None, headers_secret_ref=ref)

        control = RecordingControl()
        tools = [tool("json"), tool("html"), tool("binary"), tool("huge"), tool("gone", ref="missing")]
        ctx = ToolContext(agent=AgentConfig(tools=tools), call_id="c1", control=control,  # type: ignore[arg-type]
                          events=control, http=http,  # type: ignore[arg-type]
                          secrets={"crm": '{"Authorization": "Bearer crm-token-42"}'})
        handlers = build_tools(ctx)
        results = []
        for registration in handlers[:5]:
            params = FakeParams({"q": "ada"})
            await registration.handler(params)  # type: ignore[arg-type]
            results.append(params.results[0][0])

    assert results[0] == {"status": 200, "result": {"ok": True}}
    assert seen[0]["authorization"] == "Bearer crm-token-42"
    for refused in results[1:4]:
        assert refused == {"error": "the service gave an answer that cannot be used"}, refused
    assert results[4] == {"error": "the service is not configured correctly"} and len(seen) == 4  # never sent
    details = [e.detail for e in control.tools]
    assert "text/html" in details[1] and "application/octet-stream" in details[2] and "too large" in details[3]
    assert "'missing'" in details[4] and "crm-token-42" not in " ".join(details)
    assert control.tools[0].arguments == '{"q": "ada"}' and control.tools[0].status_code == 200


def test_a_verbatim_tool_says_a_text_answer_or_the_say_field() -> None:
    from pipelines.tools import spoken_answer

    assert spoken_answer(" Booked for ten. ") == "Booked for ten."
    assert spoken_answer({"say": "Booked.", "id": 4}) == "Booked."
    assert spoken_answer({"id": 4}) is None and spoken_answer([1]) is None and spoken_answer("  ") is None

