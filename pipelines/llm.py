"""OpenAI-compatible LLM service with HTTP clients shared by every call in the process."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.http import connection_limits

from core.agent_config import LLMConfig


class OpenAIClientPool:
    """One AsyncOpenAI client (one connection pool) per endpoint and key, for the life of the process."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], AsyncOpenAI] = {}

    def get(self, base_url: str, api_key: str, timeout_s: float) -> AsyncOpenAI:
        key = (base_url, api_key)
        client = self._clients.get(key)
        if client is None:
            client = AsyncOpenAI(
                api_key=api_key or "none",
                base_url=base_url,
                timeout=timeout_s,
                max_retries=0,  # a retry after seconds of silence is worse than the fallback path
                http_client=DefaultAsyncHttpxClient(
                    limits=connection_limits(max_keepalive_connections=100, max_connections=1000,
                                             keepalive_expiry=None),
                ),
            )
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class PooledOpenAILLMService(OpenAILLMService):
    """Pipecat's OpenAI service, but `create_client` hands out the process-wide client instead of a new one."""

    def __init__(self, *, pool: OpenAIClientPool, timeout_s: float, **kwargs: Any) -> None:
        self._pool = pool
        self._pool_timeout_s = timeout_s
        super().__init__(**kwargs)

    def create_client(self, api_key: Any = None, base_url: Any = None, organization: Any = None,
                      project: Any = None, default_headers: Any = None, **kwargs: Any) -> AsyncOpenAI:
        return self._pool.get(str(base_url), str(api_key or "none"), self._pool_timeout_s)


def tool_choice_param(config: LLMConfig) -> dict[str, Any] | str | None:
    """The request's `tool_choice` for the agent's setting; None leaves it to the server's default (auto)."""
    choice = config.tool_choice
    if choice == "auto":
        return None
    if choice in ("none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def create_llm_service(config: LLMConfig, pool: OpenAIClientPool, default_base_url: str, default_model: str,
                       default_api_key: str, system_prompt: str,
                       service_class: type[PooledOpenAILLMService] = PooledOpenAILLMService,
                       **service_kwargs: Any) -> PooledOpenAILLMService:
    """`service_class`, `service_kwargs`: a subclass and its extra arguments (the fallback chain, llm_chain.py)."""
    endpoint = config.endpoint
    return service_class(
        pool=pool,
        timeout_s=endpoint.timeout_s,
        api_key=default_api_key,  # api_key_ref (org secrets) is resolved by the backend before it gets here
        base_url=endpoint.base_url or default_base_url,
        settings=OpenAILLMService.Settings(
            model=endpoint.model or default_model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            system_instruction=system_prompt,
        ),
        **service_kwargs,
    )
