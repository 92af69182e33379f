"""OpenAI-compatible LLM service with HTTP clients shared by every call in the process."""

from __future__ import annotations

from typing import Any

import httpx2
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.http import connection_limits

from core.agent_config import LLMConfig
from core.egress import EgressPolicy, EgressRefused, pin_request
from core.service_auth import NO_KEY, ServiceTokenSource
from pipelines.speculative_replies import GuardedSpeculativeReplies


class _EgressTransport2(httpx2.AsyncBaseTransport):
    """core.egress.EgressTransport for httpx2, the HTTP client the OpenAI SDK is built on."""

    def __init__(self, policy: EgressPolicy, inner: httpx2.AsyncBaseTransport) -> None:
        self._policy = policy
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            await pin_request(self._policy, request)
        except EgressRefused as exc:
            raise httpx2.ConnectError(f"egress refused: {exc}", request=request) from None
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class OpenAIClientPool:
    """One AsyncOpenAI client (one connection pool) per endpoint, for the life of the process.

    The pool, not its callers, decides which key a request carries: the platform's key goes only to the platform's
    own endpoint (LLM_BASE_URL). An agent's custom endpoint gets only its own key (an organisation secret) and a client that reaches only addresses
    the egress guard allows (`egress`; None only for tests against local stand-ins), so a tenant can neither
    collect the platform's key nor aim the voice server at the internal network.
    Without a configured platform key (LLM_API_KEY unset), the platform's endpoint is the embedded LLM server and
    gets a fresh service token per request (`service_tokens`)."""

    def __init__(self, platform_base_url: str = "", platform_api_key: str = NO_KEY,
                 egress: EgressPolicy | None = None, service_tokens: ServiceTokenSource | None = None) -> None:
        self._platform_base_url = platform_base_url.rstrip("/")
        self._platform_api_key = platform_api_key or NO_KEY
        self._egress = egress
        self._service_tokens = service_tokens
        self._clients: dict[tuple[str, str], AsyncOpenAI] = {}

    def is_platform(self, base_url: str) -> bool:
        return bool(self._platform_base_url) and base_url.rstrip("/") == self._platform_base_url

    def for_endpoint(self, base_url: str, timeout_s: float, org_key: str | None = None) -> AsyncOpenAI:
        """`org_key`: the organisation's own key for a custom endpoint (its `api_key_ref` secret); never sent to
        the platform's endpoint, which always gets the platform's key."""
        base_url = base_url.rstrip("/")
        platform = self.is_platform(base_url)
        key = self._platform_api_key if platform else (org_key or NO_KEY)
        client = self._clients.get((base_url, key))
        if client is None:
            limits = connection_limits(max_keepalive_connections=100, max_connections=1000, keepalive_expiry=None)
            transport: httpx2.AsyncBaseTransport | None = None
            if not platform and self._egress is not None:
                transport = _EgressTransport2(self._egress, httpx2.AsyncHTTPTransport(limits=limits))
            tokens = self._service_tokens if platform and key == NO_KEY else None
            client = AsyncOpenAI(
                api_key=tokens.token_async if tokens is not None else key,
                base_url=base_url,
                timeout=timeout_s,
                max_retries=0,  # a retry after seconds of silence is worse than the fallback path
                http_client=DefaultAsyncHttpxClient(limits=limits, transport=transport, follow_redirects=False),
            )
            self._clients[(base_url, key)] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class PooledOpenAILLMService(GuardedSpeculativeReplies, OpenAILLMService):
    """Pipecat's OpenAI service, but `create_client` hands out the process-wide client instead of a new one (and a
    guess never acts before its turn is confirmed, nor twice: speculative_replies.py)."""

    def __init__(self, *, pool: OpenAIClientPool, timeout_s: float, **kwargs: Any) -> None:
        self._pool = pool
        self._pool_timeout_s = timeout_s
        super().__init__(**kwargs)

    def create_client(self, api_key: Any = None, base_url: Any = None, organization: Any = None,
                      project: Any = None, default_headers: Any = None, **kwargs: Any) -> AsyncOpenAI:
        return self._pool.for_endpoint(str(base_url), self._pool_timeout_s)  # the pool picks the key


def tool_choice_param(config: LLMConfig) -> dict[str, Any] | str | None:
    """The request's `tool_choice` for the agent's setting; None leaves it to the server's default (auto)."""
    choice = config.tool_choice
    if choice == "auto":
        return None
    if choice in ("none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def create_llm_service(config: LLMConfig, pool: OpenAIClientPool, default_base_url: str, default_model: str,
                       system_prompt: str,
                       service_class: type[PooledOpenAILLMService] = PooledOpenAILLMService,
                       **service_kwargs: Any) -> PooledOpenAILLMService:
    """`service_class`, `service_kwargs`: a subclass and its extra arguments (the fallback chain, llm_chain.py)."""
    endpoint = config.endpoint
    return service_class(
        pool=pool,
        timeout_s=endpoint.timeout_s,
        base_url=endpoint.base_url or default_base_url,
        settings=OpenAILLMService.Settings(
            model=endpoint.model or default_model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            system_instruction=system_prompt,
        ),
        **service_kwargs,
    )
