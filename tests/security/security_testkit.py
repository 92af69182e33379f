"""Helpers for the attacker tests (a unique module name: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from voicectl.procs import free_port


@dataclass
class Listener:
    """A real HTTP listener on 127.0.0.1 that records every request (method, path, headers) and answers 200 {}.
    Plain asyncio, so it sees exactly what arrives on the wire."""

    port: int
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            self.requests.append({"method": method, "path": path, "body": body.decode(errors="replace"), **headers})
            payload = b'{"id":"x","object":"chat.completion","choices":[]}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(payload)).encode() + b"\r\nConnection: close\r\n\r\n" + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[Listener]:
        listener = cls(free_port())
        server = await asyncio.start_server(listener._handle, "127.0.0.1", listener.port)
        try:
            yield listener
        finally:
            server.close()
            await server.wait_closed()


def known_settings(settings_class: Any, **values: Any) -> dict[str, Any]:
    """Only the settings `settings_class` has: the same test then runs unchanged against the code before the fix
    (where the new settings do not exist yet and its defaults apply)."""
    return {k: v for k, v in values.items() if k in settings_class.model_fields}


def voice_app(spool: Path, *, platform_llm: str, allowed: list[str] | None = None, llm_api_key: str = "none") -> Any:
    """The voice server's application state (no HTTP server: the tests call it the way its routes do)."""
    from voice_server.config import VoiceServerSettings
    from voice_server.state import VoiceApp

    # The session's secrets when a fixture set them (the data services keep them if set first), else new ones.
    service_secret = os.environ.setdefault("SERVICE_TOKEN_SECRET", secrets.token_urlsafe(48))
    call_secret = os.environ.setdefault("CALL_TOKEN_SECRET", secrets.token_urlsafe(48))
    return VoiceApp(VoiceServerSettings(**known_settings(
        VoiceServerSettings, llm_base_url=platform_llm, llm_api_key=llm_api_key, voice_spool_dir=spool,
        smart_turn_enabled=False, egress_allowed_hosts=allowed or [],
        service_token_secret=service_secret, call_token_secret=call_secret)))


async def warm_up_call(voice: Any, llm_base_url: str | None) -> None:
    """What the voice server does as soon as a call is answered: warm the agent's LLM with its prompt."""
    from core.agent_config import AgentConfig, EndpointOptions, LLMConfig
    from core.call_events import ResolvedAgent

    agent = ResolvedAgent(org_id="o1", agent_id="a1", agent_version=1, agent_name="tenant", config=AgentConfig(
        llm=LLMConfig(endpoint=EndpointOptions(base_url=llm_base_url, timeout_s=5))))
    try:
        try:
            from voice_server.warmup import warm_llm
        except ImportError:  # the code before the fix: a method of VoiceApp
            await voice.warm_llm(agent, "system prompt", "hello")
        else:
            await warm_llm(voice.llm_pool, voice.settings, agent, "system prompt", "hello")
    finally:
        await voice.llm_pool.close()


def asgi_client(app: Any, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """The in-process backend as a client at `client_ip` sees it (rate limits, /metrics, trusted proxies)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client_ip, 40000)),
                             base_url="http://testserver", timeout=30.0)
