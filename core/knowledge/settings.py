"""Where knowledge lives and how text is embedded; mixed into the backend's and the voice server's settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.settings import S3Settings


class KnowledgeSettings(S3Settings):
    # Any OpenAI-compatible /v1/embeddings (OpenAI, vLLM, TEI, Ollama); default: the embedded server (speech.embed).
    embeddings_base_url: str = "http://127.0.0.1:8400/v1"
    embeddings_model: str = "all-MiniLM-L6-v2"
    # An external provider's key; None: the embedded server, which gets a service token (SERVICE_TOKEN_SECRET).
    embeddings_api_key: SecretStr | None = None
    embeddings_timeout_s: float = Field(default=10.0, gt=0)
    # LanceDB tables; empty: s3://<S3_BUCKET_KNOWLEDGE>/lancedb on the platform's MinIO/S3. A local folder works
    # for one machine (faster: no object-store round trips on each query).
    knowledge_uri: str = ""
    s3_bucket_knowledge: str = "knowledge"

    def embeddings_key(self) -> str:
        return self.embeddings_api_key.get_secret_value() if self.embeddings_api_key else ""

    def knowledge_location(self) -> tuple[str, dict[str, str]]:
        """LanceDB URI and its storage options (S3 credentials and endpoint for an s3:// URI)."""
        uri = self.knowledge_uri or f"s3://{self.s3_bucket_knowledge}/lancedb"
        if not uri.startswith("s3://"):
            return uri, {}
        scheme = "https" if self.s3_secure else "http"
        return uri, {
            "aws_access_key_id": self.s3_access_key.get_secret_value(),
            "aws_secret_access_key": self.s3_secret_key.get_secret_value(),
            "aws_endpoint": f"{scheme}://{self.s3_endpoint}",
            "aws_region": self.s3_region,
            "allow_http": str(not self.s3_secure).lower(),
        }
