"""Which ASR model a call asks its Riva server for.

An agent may name a model; else the platform's STT_MODEL applies to the platform's own server; else the server is
asked what it serves (`GetRivaSpeechRecognitionConfig`, answered by NVIDIA Riva and by speech.asr alike) and a
streaming model for the agent's language is picked. No name is guessed: a real Riva serves models with names like
`parakeet-0.6b-en-US-asr-streaming`, the embedded server `whisper-tiny.en`. The answer is cached per server for the
process (every call on a replica shares it) and forgotten when a stream to that server fails, so a redeployed
server is asked again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc


class NoModelForLanguage(Exception):
    """The server serves no streaming model for the agent's language (the call's STT endpoint fails)."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    languages: tuple[str, ...]  # as the server lists them, e.g. ("en-US",)
    streaming: bool


def _served(response: rasr.RivaSpeechRecognitionConfigResponse) -> list[ServedModel]:
    models = []
    for cfg in response.model_config:
        params = dict(cfg.parameters)
        languages = tuple(code.strip() for code in params.get("language_code", "").split(",") if code.strip())
        # Riva marks streaming models type=online (and its own server streaming=true); offline ones cannot stream.
        streaming = params.get("type", "online") == "online" or params.get("streaming") == "true"
        models.append(ServedModel(cfg.model_name, languages, streaming))
    return models


def pick_model(models: list[ServedModel], language: str) -> str:
    """A streaming model for `language`: one that lists it exactly, else one for the same base language (en-GB for
    en-US), in the server's order."""
    wanted = language.lower()
    base = wanted.split("-")[0]
    streaming = [m for m in models if m.streaming]
    for match in (lambda code: code.lower() == wanted, lambda code: code.lower().split("-")[0] == base):
        for model in streaming:
            if any(match(code) for code in model.languages):
                return model.name
    served = ", ".join(f"{m.name} ({'/'.join(m.languages) or '?'})" for m in streaming) or "none"
    raise NoModelForLanguage(f"the ASR server serves no streaming model for {language}; it serves: {served}")


class RivaModelCatalog:
    """The models each Riva server serves, asked once per server and process. `pinned`: host:port -> model for
    servers whose model is set by the platform (STT_MODEL for RIVA_SERVER): those are never asked."""

    def __init__(self, pinned: dict[str, str] | None = None) -> None:
        self._pinned = {server: model for server, model in (pinned or {}).items() if model}
        self._served: dict[str, list[ServedModel]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def served(self, server: str, channel: grpc.aio.Channel,
                     metadata: tuple[tuple[str, str], ...] | None = None, timeout_s: float = 10.0) -> list[ServedModel]:
        known = self._served.get(server)
        if known is not None:
            return known
        async with self._locks.setdefault(server, asyncio.Lock()):
            if server not in self._served:
                response = await rasr_grpc.RivaSpeechRecognitionStub(channel).GetRivaSpeechRecognitionConfig(
                    rasr.RivaSpeechRecognitionConfigRequest(), metadata=metadata, timeout=timeout_s)
                self._served[server] = _served(response)
            return self._served[server]

    async def model_for(self, server: str, language: str, channel: grpc.aio.Channel,
                        metadata: tuple[tuple[str, str], ...] | None = None, timeout_s: float = 10.0) -> str:
        if server in self._pinned:
            return self._pinned[server]
        return pick_model(await self.served(server, channel, metadata, timeout_s), language)

    def forget(self, server: str) -> None:
        self._served.pop(server, None)
