"""Settings shared by every service: where local state lives and how to reach MongoDB and S3.

Each service has one settings class of its own (backend/config.py, voice_server/config.py, speech/*/config.py)
that inherits from ``ServiceSettings``. Values come from the environment, then from ``.env``, then from the
dev defaults that ``voicectl`` generates into the state folder (never hard-coded secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def state_dir() -> Path:
    """The local state folder (FerretDB data, MinIO data, generated dev secrets, logs)."""
    return Path(os.environ.get("VOICEAGENT_STATE_DIR", Path.cwd() / ".state")).resolve()


def env_files() -> tuple[Path, ...]:
    # Later files win: generated dev defaults, then the services' endpoints, then the user's own .env.
    sd = state_dir()
    return (sd / "dev-secrets.env", sd / "services.env", Path(".env"))


# Production secrets: at least 32 bytes that look random (e.g. `openssl rand -hex 32`). A long run of few distinct
# characters ("aaaa…", "changeme" repeated) is not a key, whatever its length.
STRONG_SECRET_BYTES = 32
STRONG_SECRET_DISTINCT_CHARS = 12
DEV_SECRET_MIN_CHARS = 16


def weak_secrets(secrets: dict[str, SecretStr], *, strong: bool) -> list[str]:
    """Names of the secrets too short (or, when `strong`, too short or too repetitive) to use."""
    weak = []
    for name, value in secrets.items():
        text = value.get_secret_value()
        if strong:
            if len(text.encode()) < STRONG_SECRET_BYTES or len(set(text)) < STRONG_SECRET_DISTINCT_CHARS:
                weak.append(name)
        elif len(text) < DEV_SECRET_MIN_CHARS:
            weak.append(name)
    return weak


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=env_files(), env_file_encoding="utf-8", extra="ignore")

    log_level: str = "INFO"
    log_json: bool = True


class MongoSettings(ServiceSettings):
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_db: str = "voiceagent"
    mongodb_timeout_ms: int = 5000


class S3Settings(ServiceSettings):
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket_recordings: str = "recordings"
    # Public endpoint used to sign browser-facing URLs (e.g. behind a proxy); defaults to s3_endpoint.
    s3_public_endpoint: str | None = None
    # Recordings encrypted at rest (SSE-KMS) with this key, the organisation as encryption context; also the bucket's
    # default encryption. Local MinIO: the key named in MINIO_KMS_SECRET_KEY; S3: a KMS key id or ARN.
    s3_sse_kms_key_id: str | None = None


class DataSettings(MongoSettings, S3Settings):
    """MongoDB + S3 together, for services that use both."""

    service_token_secret: SecretStr = Field(default=SecretStr(""), description="HMAC key for internal service tokens")
