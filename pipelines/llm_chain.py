"""The LLM degradation chain: primary endpoint -> fallback endpoints (any OpenAI-compatible server/model) ->
the agent's canned reply, then a transfer (or the end of the call).

Each completion tries the endpoints in order, skipping those whose circuit breaker is open. An endpoint fails
when the request errors or no first chunk arrives within its `timeout_s`; the first endpoint that streams wins
the whole reply (no switching mid-reply: the caller would hear two different answers).

On the platform's own LLM the chain also prefills (LLM_PREFILL_NEXT_TURN): after each agent turn it sends the
next turn's request with an empty caller message and one token to generate, while the agent speaks. llama.cpp
keeps the prompt's KV state, so the next turn evaluates only the caller's words and the assistant header instead
of also the end of the reply and the caller's header: in live calls on SmolLM2 the first token came 158 -> 121 ms
at p50 (BENCHMARKS.md "The next turn's prompt evaluated while the agent speaks").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from loguru import logger
from openai.types.chat import ChatCompletionChunk
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.utils.types import assert_given

from core.agent_config import LLMConfig
from pipelines.context_budget import CHARS_PER_TOKEN, estimate_tokens, within_budget
from pipelines.degradation import DegradationPolicy
from pipelines.llm import PooledOpenAILLMService
from pipelines.resilience import BreakerRegistry, BreakerState


@dataclass(frozen=True)
class LLMEndpoint:
    base_url: str
    model: str
    timeout_s: float
    org_key: str | None = field(default=None, repr=False)  # its api_key_ref secret; the pool decides if it is sent


class LLMUnavailable(Exception):
    pass


class _FirstThenRest:
    """A started completion stream with its first chunk already read (to prove the endpoint is alive)."""

    def __init__(self, first: ChatCompletionChunk, iterator: AsyncIterator[ChatCompletionChunk], stream: Any) -> None:
        self._first: ChatCompletionChunk | None = first
        self._iterator = iterator
        self._stream = stream

    def __aiter__(self) -> _FirstThenRest:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._iterator.__anext__()

    async def close(self) -> None:
        await self._stream.close()


class FallbackLLMService(PooledOpenAILLMService):
    def __init__(self, *, endpoints: list[LLMEndpoint], breakers: BreakerRegistry, policy: DegradationPolicy,
                 canned_reply: str, token_budget: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token_budget = token_budget
        self._prefill_task: asyncio.Task[bool] | None = None
        self.prefills = 0  # next-turn prompts the platform's LLM evaluated ahead (prefill_next_turn)
        self.prompt_tokens_sent = 0
        self.endpoints = endpoints
        self._breakers = breakers
        self._policy = policy
        self._canned_reply = canned_reply
        self.served_by: list[str] = []  # endpoint of each completion, for tests and logs

    async def _request_params(self, context: LLMContext) -> dict[str, Any]:
        adapter = self.get_llm_adapter()
        params_from_context = await adapter.get_llm_invocation_params(
            context,
            system_instruction=assert_given(self._settings.system_instruction),  # type: ignore[attr-defined]
            convert_developer_to_user=not self.supports_developer_role,
        )
        return within_budget(after_tool_result(self.build_chat_completion_params(params_from_context)),
                             self._token_budget)

    async def get_chat_completions(self, context: LLMContext) -> Any:
        params = await self._request_params(context)
        # Streams from llama.cpp carry no usage: count what was sent (the observer reports it when none came).
        self.prompt_tokens_sent += (estimate_tokens(list(params.get("messages") or []))
                                    + len(json.dumps(params.get("tools") or [], default=str)) // CHARS_PER_TOKEN)
        last = ""
        for index, endpoint in enumerate(self.endpoints):
            breaker = self._breakers.get(endpoint.base_url)
            if not breaker.allow():
                reason = f"circuit open ({breaker.snapshot().last_error})"
            else:
                try:
                    stream = await self._first_chunk(endpoint, {**params, "model": endpoint.model})
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"[:300]
                    if endpoint_unhealthy(exc):
                        breaker.record_failure(reason)
                else:
                    breaker.record_success()
                    self.served_by.append(endpoint.base_url)
                    return stream
            nxt = self.endpoints[index + 1].base_url if index + 1 < len(self.endpoints) else "canned_reply"
            self._policy.report("llm", endpoint.base_url, nxt, reason)
            last = reason
        raise LLMUnavailable(last)

    async def _first_chunk(self, endpoint: LLMEndpoint, params: dict[str, Any]) -> _FirstThenRest:
        client = self._pool.for_endpoint(endpoint.base_url, endpoint.timeout_s, endpoint.org_key)  # the pool picks
        deadline = time.monotonic() + endpoint.timeout_s
        stream = await asyncio.wait_for(client.chat.completions.create(**params), endpoint.timeout_s)
        iterator = stream.__aiter__()
        try:
            first = await asyncio.wait_for(iterator.__anext__(), max(0.01, deadline - time.monotonic()))
        except BaseException:
            await stream.close()
            raise
        return _FirstThenRest(first, iterator, stream)

    def prefill_after_turns(self, assistant: LLMAssistantAggregator, context: LLMContext) -> None:
        """Prefill each time an agent turn is in the call's context (LLM_PREFILL_NEXT_TURN on)."""
        @assistant.event_handler("on_assistant_turn_stopped")
        async def _agent_turn_stopped(_aggregator: Any, _message: Any) -> None:
            self.prefill_next_turn(context)

    def prefill_next_turn(self, context: LLMContext) -> None:
        """After an agent turn, have the platform's LLM evaluate the next prompt up to the caller's words, in the
        background while the agent speaks; the next turn's request then starts from that cached prefix."""
        if (self._prefill_task is not None and not self._prefill_task.done()) or not caller_speaks_next(
                context.messages):
            return
        self._prefill_task = self.create_task(self.prefill(context), name="prefill")

    async def prefill(self, context: LLMContext) -> bool:
        """The request the next turn will make, with an empty caller message and one token to generate. Only for
        the platform's own endpoint: against a metered API it would cost a prompt per turn, and an organisation's
        endpoint is its own to load. False when not sent or refused (the next turn is then as it was)."""
        endpoint = self.endpoints[0]
        # only while its breaker is closed: `allow()` would take a half-open breaker's one trial for a prefill
        if (not self._pool.is_platform(endpoint.base_url)
                or self._breakers.get(endpoint.base_url).state is not BreakerState.CLOSED):
            return False
        ahead = LLMContext(messages=[*context.messages, cast(LLMContextMessage, {"role": "user", "content": ""})],
                           tools=context.tools, tool_choice=context.tool_choice)
        params = await self._request_params(ahead)
        params.pop("stream_options", None)
        params.pop("max_completion_tokens", None)
        params.update(model=endpoint.model, stream=False, max_tokens=1)
        client = self._pool.for_endpoint(endpoint.base_url, endpoint.timeout_s)
        try:
            await client.chat.completions.create(**params)
        except Exception as exc:  # an optimisation: the turn's own request reports what matters
            logger.debug(f"{self}: prefill failed ({type(exc).__name__}: {exc})")
            return False
        self.prefills += 1
        return True

    async def cleanup(self) -> None:
        if self._prefill_task is not None and not self._prefill_task.done():
            await self.cancel_task(self._prefill_task)
        await super().cleanup()

    async def _process_context(self, context: LLMContext) -> None:
        if self._policy.gave_up:
            return  # the canned reply and the hand-over are under way
        try:
            await super()._process_context(context)
        except LLMUnavailable as exc:
            logger.warning(f"{self}: every LLM endpoint failed ({exc}); canned reply")
            await self.stop_ttfb_metrics()
            # The canned reply is said once, as the announcement before the hand-over (or as the goodbye).
            self._policy.give_up("llm", str(exc), self._canned_reply)


def endpoint_unhealthy(exc: BaseException) -> bool:
    """Whether a failed request says the endpoint is unwell (it counts against the circuit breaker every call on
    this replica shares): transport errors, timeouts, 5xx and 429 (overloaded). Any other 4xx is about this one
    request (context overflow, a bad parameter): that call falls back, the others keep the endpoint."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code == 429
    return True


def after_tool_result(params: dict[str, Any]) -> dict[str, Any]:
    """A forced tool choice (a named tool, or "required") shapes the reply to the caller; the completion that
    reads a tool's result must be free text, or a forced model would call the tool again, forever. Also gives a
    tool-calling assistant turn the empty `content` that chat templates expect."""
    messages = params.get("messages") or []
    if any(isinstance(m, dict) and m.get("tool_calls") and "content" not in m for m in messages):
        # An assistant turn that only called a tool has no `content`; chat templates that read message.content
        # (the embedded SmolLM2's among them) fail to render it, and the server ends the stream empty.
        messages = [{**m, "content": ""} if isinstance(m, dict) and m.get("tool_calls") and "content" not in m
                    else m for m in messages]
        params = {**params, "messages": messages}
    forced = isinstance(params.get("tool_choice"), dict) or params.get("tool_choice") == "required"
    if forced and messages and _role(messages[-1]) == "tool":
        return {**params, "tool_choice": "none"}
    return params


def caller_speaks_next(messages: list[Any]) -> bool:
    """Whether the context ends with an agent turn in words: the next request then starts with the caller's
    message. Not after a tool call (its result and another completion come first) nor anything else."""
    last = messages[-1] if messages else None
    return (isinstance(last, dict) and last.get("role") == "assistant" and isinstance(last.get("content"), str)
            and not last.get("tool_calls"))


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else getattr(message, "role", None)


def llm_endpoints(config: LLMConfig, default_base_url: str, default_model: str,
                  secrets: dict[str, str] | None = None) -> list[LLMEndpoint]:
    """Each endpoint with its own key (its `api_key_ref` secret: a fallback never reuses the primary's)."""
    chain = [config.endpoint, *config.fallbacks]
    return [LLMEndpoint((e.base_url or default_base_url).rstrip("/"), e.model or default_model, e.timeout_s,
                        (secrets or {}).get(e.api_key_ref) if e.api_key_ref else None)
            for e in chain]


def llm_chain_args(config: LLMConfig, default_base_url: str, default_model: str, *, breakers: BreakerRegistry,
                   policy: DegradationPolicy, secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """Arguments for `create_llm_service` that build the chain instead of one endpoint."""
    endpoints = llm_endpoints(config, default_base_url, default_model, secrets)
    return {"service_class": FallbackLLMService, "endpoints": endpoints,
            "breakers": breakers, "policy": policy, "canned_reply": config.canned_reply,
            "token_budget": config.context_token_budget}
