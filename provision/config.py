"""The provisioning job's one settings object: the object store's root keys (used by this job only) and the key
pair of each service's own MinIO user."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.settings import ServiceSettings


class ProvisionSettings(ServiceSettings):
    s3_endpoint: str = "127.0.0.1:9000"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket_recordings: str = "recordings"
    s3_bucket_knowledge: str = "knowledge"  # uploaded documents and the LanceDB tables (docs/knowledge-base.md)
    minio_root_user: str = Field(min_length=3)
    minio_root_password: SecretStr
    s3_backend_access_key: str = Field(default="voiceagent-backend", min_length=3)
    s3_backend_secret_key: SecretStr = Field(min_length=8)
    s3_voice_access_key: str = Field(default="voiceagent-voice-server", min_length=3)
    s3_voice_secret_key: SecretStr = Field(min_length=8)
    # How long to wait for the object store to answer before giving up (it may still be starting).
    provision_wait_s: float = Field(default=120.0, gt=0)
