"""The backend's one settings object."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from backend.campaigns.settings import CampaignSettingsMixin
from core.egress import EgressSettings
from core.knowledge.settings import KnowledgeSettings
from core.settings import DataSettings, weak_secrets


class BackendSettings(DataSettings, CampaignSettingsMixin, EgressSettings, KnowledgeSettings):  # campaign/dialer fields: backend/campaigns/settings.py
    jwt_secret: SecretStr = SecretStr("")
    jwt_algorithm: str = Field(default="HS256", pattern="^HS256$")  # pinned: never trust the token's own `alg`
    access_token_ttl_s: int = Field(default=900, ge=1)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    encryption_key: SecretStr = SecretStr("")  # key material for carrier credentials and webhook secrets at rest
    # Comma-separated or a JSON list; never "*".
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:5173", "http://localhost:5173"]
    )
    public_base_url: str = "http://127.0.0.1:8000"
    voice_server_url: str = "http://127.0.0.1:8100"
    # Browser test calls: where browsers open the voice server's /v1/browser socket. A ws(s):// base, or a path on
    # the UI's origin behind a proxy (e.g. /voice). Empty: VOICE_SERVER_URL with http(s) -> ws(s).
    test_call_ws_base_url: str = ""
    # Signs the single-use browser call tokens; the voice server checks them with the same CALL_TOKEN_SECRET.
    call_token_secret: SecretStr = SecretStr("")
    test_call_token_ttl_s: int = Field(default=60, ge=10, le=600)
    # The TTS server (speech/tts) whose voices the agent editor lists and samples.
    tts_url: str = "http://127.0.0.1:8200"
    voice_sample_max_chars: int = Field(default=300, ge=1, le=4096)
    # Agent test runs ("Run tests"): the simulated caller's TTS voice (empty: the first voice unlike the agent's),
    # and the stronger LLM that plays simulated personas and judges them (empty: persona scenarios are skipped
    # with that reason; the embedded SmolLM2 cannot play a caller). Any OpenAI-compatible /chat/completions.
    agent_tests_caller_voice: str = Field(default="", max_length=200)
    agent_tests_llm_base_url: str = ""
    agent_tests_llm_model: str = ""
    agent_tests_llm_api_key: SecretStr | None = None  # optional: endpoints that need no key
    frontend_dist: str | None = None  # folder with the built UI, served at /

    # Demo account (demo@example.com / demo-password-123, an owner) with sample agents, created at startup when true.
    # Only `voicectl run` turns it on; the backend refuses it when PUBLIC_BASE_URL is https (a public deployment).
    seed_demo: bool = False

    # Passwords (argon2id). Lower only for tests.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    # Login / register throttling, counted in MongoDB so every replica shares the limits.
    login_attempts_per_ip_per_minute: int = Field(default=30, ge=1)
    # Wrong passwords for one email from one client address before that address gets 429 for that email; past as
    # many failures from anywhere, every attempt on the account waits 0.25 s doubling up to LOGIN_MAX_DELAY_S (a
    # delay, never a lockout: the owner's correct password still works).
    login_failures_per_email: int = Field(default=10, ge=1)
    login_failure_window_s: int = Field(default=900, ge=1)
    login_max_delay_s: float = Field(default=8.0, ge=0, le=60)
    # Reverse proxies / load balancers (IPs or CIDRs) whose X-Forwarded-For is believed. Empty: the peer address is
    # the client (rate limits behind an unlisted proxy would see one address for everyone).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    register_per_ip_per_hour: int = Field(default=20, ge=1)

    # Request bodies: JSON (and every other route) at most MAX_BODY_BYTES; CSV imports CAMPAIGN_CSV_MAX_BYTES; the
    # internal event API (service tokens only) its own cap. Larger bodies get 413 while they stream in.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_internal_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    invitation_ttl_s: int = Field(default=3 * 24 * 3600, ge=60)  # the link carries a token: short-lived
    recording_url_ttl_s: int = Field(default=900, ge=1, le=7 * 24 * 3600)

    # The carriers' REST APIs (number ownership checks here; calls, transfers and hang-ups in the voice server and
    # dialer, which get it with the credentials). Empty: the carrier's public API. Operator settings only (tests:
    # the fake carrier); tenants cannot choose where their credentials are sent.
    twilio_api_base_url: str = ""
    vobiz_api_base_url: str = ""

    # Outgoing webhooks.
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=30)
    webhook_max_attempts: int = Field(default=8, ge=1, le=20)
    webhook_backoff_base_s: float = Field(default=2.0, gt=0)
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0)

    # Platform price book (backend/models/billing.py PriceBook as JSON); empty: the built-in defaults.
    price_book: str = ""

    # Post-call analysis (services/call_analysis.py): an OpenAI-compatible LLM; empty base URL: analysis off.
    analysis_llm_base_url: str = ""
    analysis_llm_model: str = "smollm2-135m-instruct"
    analysis_llm_api_key: SecretStr = SecretStr("none")
    # "json_object": llama.cpp-style JSON mode with a schema (a grammar); "json_schema": OpenAI structured outputs.
    analysis_json_mode: Literal["json_object", "json_schema"] = "json_object"
    analysis_timeout_s: float = Field(default=60.0, gt=0, le=600)
    analysis_max_attempts: int = Field(default=3, ge=1, le=10)

    # Knowledge bases (docs/knowledge-base.md); embeddings endpoint and store: core/knowledge/settings.py.
    knowledge_max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    knowledge_ingest_attempts: int = Field(default=5, ge=1, le=20)
    knowledge_retry_backoff_s: float = Field(default=5.0, gt=0)

    # Background workers (call event projection, webhook dispatch) run on one elected replica.
    worker_poll_interval_s: float = Field(default=0.5, gt=0)
    leader_window_s: float = Field(default=10.0, ge=1)
    # How often the leader moves old call-list pages out of the hot collection.
    archive_interval_s: float = Field(default=15.0, gt=0)
    # Call events the leader applies per batch, and whether a backlog (a full batch) is then read one outbox lane at
    # a time (collections.OUTBOX_LANES). Lanes need a database that serves an equality filter from an index
    # (MongoDB, FerretDB on PostgreSQL); FerretDB on SQLite scans for it, so voicectl turns them off there.
    outbox_batch_size: int = Field(default=2000, ge=1, le=10000)
    outbox_lane_reads: bool = True
    # How long an internal event POST waits for its events to be applied when this replica is the leader (0: answer
    # as soon as they are stored; tests use it to read their own writes).
    event_apply_wait_s: float = Field(default=0.0, ge=0)
    # How often the leader looks for voice servers whose call lease ran out (backend/services/call_leases.py).
    call_lease_check_interval_s: float = Field(default=2.0, gt=0, le=60)
    # A call still open this long that no beating voice server reports (its media stream never connected and no
    # carrier status callback came) is ended as an error, so it leaves the live view and frees its slot.
    call_orphan_after_s: float = Field(default=900.0, ge=1, le=86400)

    # Seconds a resolved session/membership/API key is reused before re-reading it. Revocations made on this replica
    # apply at once; on other replicas within this time. 0 re-reads on every request.
    auth_cache_ttl_s: float = Field(default=1.0, ge=0, le=30)

    # Bearer token for /metrics; empty: only scrapers on this host (loopback, not through a proxy) may read it.
    metrics_token: SecretStr = SecretStr("")

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if any(origin.strip() == "*" for origin in value):
            raise ValueError("CORS_ORIGINS must list origins explicitly; '*' is not allowed")
        return [origin.rstrip("/") for origin in value]

    def carrier_api_base_url(self, carrier: str) -> str | None:
        return {"twilio": self.twilio_api_base_url, "vobiz": self.vobiz_api_base_url}.get(carrier) or None

    @property
    def production(self) -> bool:
        """A public deployment: served over https. Dev-only conveniences are refused there."""
        return self.public_base_url.startswith("https://")

    def missing_secrets(self) -> list[str]:
        names = {
            "JWT_SECRET": self.jwt_secret,
            "ENCRYPTION_KEY": self.encryption_key,
            "SERVICE_TOKEN_SECRET": self.service_token_secret,
        }
        if self.production:
            names["CALL_TOKEN_SECRET"] = self.call_token_secret
        return weak_secrets(names, strong=self.production)


@lru_cache
def get_settings() -> BackendSettings:
    return BackendSettings()
