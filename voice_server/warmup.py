"""Work done ahead of time so the first call, and the first reply of each call, do not pay for it: one throw-away
pipeline at start-up (Pipecat's lazy imports), and the LLM's prompt prefix while the carrier connects."""

from __future__ import annotations

import logging
from typing import Any

from core.call_events import ResolvedAgent
from pipelines.factory import CallServices
from pipelines.llm import OpenAIClientPool
from voice_server.config import VoiceServerSettings
from voice_server.media.playout import PlayoutTracker

log = logging.getLogger(__name__)


def warm_up_pipeline(services: CallServices) -> None:
    """Builds (and throws away) one call pipeline, so the first real call does not pay for Pipecat's lazy
    imports (about 200 ms on 2 cores)."""
    from types import SimpleNamespace

    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

    from core.agent_config import AgentConfig
    from pipelines.factory import CallSpec, build_call_pipeline
    from voice_server.media.transport import CarrierTransport

    class _Quiet:
        async def end_call(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def transfer(self, *args: Any, **kwargs: Any) -> str:
            return ""

        async def hand_off_agent(self, agent_id: str) -> None:
            return None

        def turn(self, event: Any) -> None:
            return None

        def tool(self, event: Any) -> None:
            return None

        def degraded(self, event: Any) -> None:
            return None

        def redacted(self, start_ms: int, end_ms: int) -> None:
            return None

        def flow_node(self, event: Any) -> None:
            return None

        def timeline_ms(self, monotonic_s: float | None = None) -> int:
            return 0

    try:
        ws: Any = SimpleNamespace(headers={}, client_state=None, application_state=None)
        params = FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True, allowed_origins=[])
        transport = CarrierTransport(ws, params, PlayoutTracker(), lead_s=0.1)
        quiet = _Quiet()
        build_call_pipeline(transport, CallSpec(call_id="warm-up", agent=AgentConfig()), services,
                            control=quiet, events=quiet)
    except Exception as exc:  # only an optimisation
        log.warning("pipeline warm-up failed: %s", exc)


async def warm_llm(pool: OpenAIClientPool, settings: VoiceServerSettings, agent: ResolvedAgent, system_prompt: str,
                   greeting: str) -> None:
    """Sends the prompt prefix once while the carrier connects, so the first reply finds it cached."""
    cfg = agent.config.llm
    client = pool.for_endpoint(cfg.endpoint.base_url or settings.llm_base_url, cfg.endpoint.timeout_s)  # picks the key
    messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
    if greeting:
        messages.append({"role": "assistant", "content": greeting})
    try:
        await client.chat.completions.create(
            model=cfg.endpoint.model or settings.llm_model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=1, temperature=0,
        )
    except Exception as exc:  # only an optimisation
        log.debug("LLM warm-up failed: %s", exc)
