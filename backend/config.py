"""The backend's one settings object."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from core.settings import DataSettings


class BackendSettings(DataSettings):
    jwt_secret: SecretStr = SecretStr("")
    jwt_algorithm: str = Field(default="HS256", pattern="^HS256$")  # pinned: never trust the token's own `alg`
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    encryption_key: SecretStr = SecretStr("")  # Fernet key material for carrier credentials at rest
    cors_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:5173", "http://localhost:5173"])
    public_base_url: str = "http://127.0.0.1:8000"
    voice_server_url: str = "http://127.0.0.1:8100"
    frontend_dist: str | None = None  # folder with the built UI, served at /


@lru_cache
def get_settings() -> BackendSettings:
    return BackendSettings()
