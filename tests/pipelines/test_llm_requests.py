"""What the LLM chain sends (pipelines/llm_chain.py, pipelines/context_budget.py): a forced tool choice only for
the reply to the caller, each endpoint's own key, which failures count against the shared circuit breaker, and a
60-turn call whose requests stay inside the agent's token budget and are accepted by the real LLM server."""

from __future__ import annotations

import json
from typing import Any

import httpx

from pipelines.context_budget import estimate_tokens, within_budget
from voicectl.speech_auth import speech_headers


def test_a_forced_tool_choice_does_not_apply_to_the_reply_after_the_tool_result() -> None:
    from pipelines.llm_chain import after_tool_result

    forced = {"type": "function", "function": {"name": "book"}}
    asking = {"messages": [{"role": "user", "content": "book me"}], "tool_choice": forced}
    assert after_tool_result(asking) == asking
    answered = {"messages": [*asking["messages"], {"role": "tool", "content": "{}"}], "tool_choice": forced}
    assert after_tool_result(answered)["tool_choice"] == "none"
    auto = {"messages": answered["messages"]}
    assert after_tool_result(auto) == auto
    called = {"messages": [{"role": "assistant", "tool_calls": [{"id": "1"}]}, {"role": "tool", "content": "{}"}]}
    assert after_tool_result(called)["messages"][0]["content"] == ""


def test_each_llm_endpoint_carries_its_own_key() -> None:
    """A fallback's key is its own secret (never the primary's); the pool sends the platform's key only to the
    platform's endpoint and an organisation's key only to a custom one."""
    from core.agent_config import LLMConfig
    from pipelines.llm import OpenAIClientPool
    from pipelines.llm_chain import llm_endpoints

    config = LLMConfig(endpoint={"api_key_ref": "primary"},
                       fallbacks=[{"base_url": "https://a.example.com/v1", "api_key_ref": "fb"},
                                  {"base_url": "https://b.example.com/v1"}])
    endpoints = llm_endpoints(config, "http://platform/v1", "m", {"primary": "k1", "fb": "k2"})
    assert [e.org_key for e in endpoints] == ["k1", "k2", None]
    assert "k1" not in repr(endpoints)
    pool = OpenAIClientPool("http://platform/v1", "platform-key")
    keys = [pool.for_endpoint(e.base_url, 1.0, e.org_key).api_key for e in endpoints]
    assert keys == ["platform-key", "k2", "none"]



def test_only_transport_errors_timeouts_and_5xx_count_against_the_shared_breaker() -> None:
    import httpx as _httpx
    import openai

    from pipelines.llm_chain import endpoint_unhealthy

    request = _httpx.Request("POST", "http://llm/v1/chat/completions")

    def status(code: int) -> openai.APIStatusError:
        return openai.APIStatusError("x", response=_httpx.Response(code, request=request), body=None)

    assert not endpoint_unhealthy(status(400)) and not endpoint_unhealthy(status(413))  # e.g. context overflow
    assert endpoint_unhealthy(status(500)) and endpoint_unhealthy(status(503)) and endpoint_unhealthy(status(429))
    assert endpoint_unhealthy(openai.APIConnectionError(request=request))
    assert endpoint_unhealthy(TimeoutError()) and endpoint_unhealthy(StopAsyncIteration())



def _long_call(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are the receptionist of Test Clinic. "
                                                                    "Answer in one short sentence."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Turn {i}: I have another question about my visit, "
                                                    "what else should I bring with me to the clinic?"})
        if i in (10, 50):
            messages.append({"role": "assistant", "content": "", "tool_calls": [{
                "id": f"c{i}", "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"turn": i})}}]})
            messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": f"patient file {i}: allergic"})
        messages.append({"role": "assistant", "content": f"Answer {i}: bring your insurance card and a list of "
                                                         "your medicines, please."})
    return messages


def _valid(messages: list[dict[str, Any]]) -> bool:
    return all(m.get("role") != "tool" or (i > 0 and messages[i - 1].get("role") in ("assistant", "tool"))
               for i, m in enumerate(messages))


async def test_a_sixty_turn_call_stays_inside_the_token_budget(llm_url: str) -> None:
    budget = 1200
    for turn in range(1, 61):
        messages = _long_call(turn)
        sent = within_budget({"messages": messages}, budget)["messages"]
        assert estimate_tokens(sent) <= budget, (turn, estimate_tokens(sent))
        assert sent[0] == messages[0] and sent[-1] == messages[-1] and _valid(sent), turn
    assert estimate_tokens(messages) > 3 * budget  # the call itself is far longer than the budget
    assert "patient file 10" in sent[1]["content"]  # an early tool result survives in the note
    assert any(m.get("content") == "patient file 50: allergic" for m in sent)  # a recent one is kept whole

    # The real LLM server (2048-token context) answers the trimmed request and refuses the whole call with a 4xx,
    # which is about that request only (endpoint_unhealthy is False for it).
    async with httpx.AsyncClient(timeout=120) as http:
        ok = await http.post(f"{llm_url}/v1/chat/completions", headers=speech_headers("tests"), json={"messages": sent, "max_tokens": 20})
        assert ok.status_code == 200, ok.text[:300]
        whole = await http.post(f"{llm_url}/v1/chat/completions", headers=speech_headers("tests"), json={"messages": messages, "max_tokens": 20})
        assert 400 <= whole.status_code < 500, whole.status_code


def test_custom_speech_endpoints_carry_their_own_secret_and_the_platform_keeps_its_own() -> None:
    from core.agent_config import STTConfig, TTSConfig
    from pipelines.stt_chain import stt_endpoints
    from pipelines.tts_chain import tts_endpoints

    secrets = {"tts-key": "t1", "stt-key": "s1"}
    tts = tts_endpoints(TTSConfig(fallbacks=[{"base_url": "https://tts.example.com", "api_key_ref": "tts-key"}]),
                        "http://platform-tts", secrets)
    assert [(e.platform, e.org_key) for e in tts] == [(True, None), (False, "t1")] and "t1" not in repr(tts)
    stt = stt_endpoints(STTConfig(fallbacks=[{"base_url": "asr.example.com:50051", "api_key_ref": "stt-key"}]),
                        "127.0.0.1:50051", secrets)
    assert [(e.platform, e.org_key) for e in stt] == [(True, None), (False, "s1")] and "s1" not in repr(stt)


def test_the_next_turn_is_prefilled_only_after_an_agent_turn_in_words() -> None:
    from pipelines.llm_chain import caller_speaks_next

    said = {"role": "assistant", "content": "Hello, how can I help?"}
    assert caller_speaks_next([{"role": "system", "content": "Be brief."}, said])
    assert not caller_speaks_next([])
    assert not caller_speaks_next([said, {"role": "user", "content": "hi"}])  # the caller's turn is under way
    calling = {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "type": "function"}]}
    assert not caller_speaks_next([said, calling])  # the tool's result and another completion come first
    assert not caller_speaks_next([said, calling, {"role": "tool", "tool_call_id": "1", "content": "{}"}])


async def test_a_prefill_goes_only_to_the_platform_llm_which_then_answers_the_turn(llm_url: str) -> None:
    """The platform's LLM server accepts the prefill (with the agent's tools and forced tool choice, as the keypad
    agents send them) and answers the turn after it; an organisation's own endpoint is never sent one, and a
    recovering (half-open) endpoint keeps its one trial for a real turn."""
    import asyncio

    from pipecat.adapters.schemas.function_schema import FunctionSchema
    from pipecat.adapters.schemas.tools_schema import ToolsSchema
    from pipecat.processors.aggregators.llm_context import LLMContext

    from core.agent_config import AgentConfig, EndpointOptions, LLMConfig
    from pipelines.degradation import DegradationPolicy
    from pipelines.llm import OpenAIClientPool, create_llm_service
    from pipelines.llm_chain import FallbackLLMService, llm_chain_args
    from pipelines.resilience import BreakerRegistry, BreakerSettings, BreakerState
    from voicectl.speech_auth import speech_token

    def service(config: LLMConfig) -> FallbackLLMService:
        # the policy's call hooks are never reached: a prefill neither degrades nor ends the call
        policy = DegradationPolicy(AgentConfig(llm=config), "call-1", None, None)  # type: ignore[arg-type]
        llm = create_llm_service(config, pool, f"{llm_url}/v1", "smollm2-135m-instruct", "Be brief.",
                                 **llm_chain_args(config, f"{llm_url}/v1", "smollm2-135m-instruct",
                                                  breakers=breakers, policy=policy))
        assert isinstance(llm, FallbackLLMService)
        return llm

    now = [0.0]
    breakers = BreakerRegistry(BreakerSettings(failure_threshold=1, cooldown_s=30), clock=lambda: now[0])
    pool = OpenAIClientPool(f"{llm_url}/v1", speech_token("tests"))
    tools = ToolsSchema(standard_tools=[FunctionSchema(
        name="send_digits", description="Press keys", required=["digits"],
        properties={"digits": {"type": "string", "pattern": "^[0-9*#]{1,32}$"}})])
    greeting = {"role": "assistant", "content": "Hello, this is Test Clinic. How can I help?"}
    platform = service(LLMConfig(max_tokens=12, temperature=0))
    context = LLMContext(messages=[greeting], tools=tools,
                         tool_choice={"type": "function", "function": {"name": "send_digits"}})  # type: ignore[list-item]
    assert await platform.prefill(context) and platform.prefills == 1
    context.add_message({"role": "user", "content": "When do you open tomorrow?"})
    stream = await platform.get_chat_completions(context)
    try:
        assert [chunk async for chunk in stream]
    finally:
        await stream.close()

    breaker = breakers.get(f"{llm_url}/v1")
    breaker.record_failure("down")
    now[0] += 30  # the cool-down is over: one trial may go
    assert breaker.state is BreakerState.HALF_OPEN
    assert not await platform.prefill(context) and platform.prefills == 1
    assert breaker.allow()  # the trial is still there for the turn itself

    connections = 0

    async def count(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    own = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        custom = service(LLMConfig(endpoint=EndpointOptions(base_url=own, timeout_s=5)))
        assert not await custom.prefill(LLMContext(messages=[greeting])) and custom.prefills == 0
        await asyncio.sleep(0.1)
        assert connections == 0
    finally:
        server.close()
        await pool.close()
