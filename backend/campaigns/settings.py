"""Campaign and dialer settings. They are part of the backend's one settings class (BackendSettings inherits
this mixin), so they come from the same environment and .env files."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class CampaignSettingsMixin(BaseSettings):
    # Run a dialer worker inside the backend process. Dialers can also run on their own
    # (`python -m backend.campaigns`); any number of them may run at once.
    dialer_enabled: bool = False
    dialer_id: str | None = Field(default=None, description="Names this dialer in leases and logs; random if unset.")
    dialer_poll_interval_s: float = Field(default=0.2, gt=0, le=10)
    # How often a claim waiting for a free slot looks again (one small read per dialer and campaign); a call
    # ending in this process wakes it at once.
    dialer_slot_poll_s: float = Field(default=0.05, gt=0, le=10)
    dialer_contact_refresh_s: float = Field(default=2.0, gt=0, le=60)
    dialer_heartbeat_s: float = Field(default=1.0, gt=0, le=30)
    # A dialer whose heartbeat is older than this is presumed dead: its unsent claims are recovered.
    dialer_dead_after_s: float = Field(default=6.0, gt=0, le=600)
    # A claim that has not turned into a dial after this long is recovered even if its dialer still beats.
    dialer_claim_ttl_s: float = Field(default=30.0, gt=0, le=3600)
    # A dialled call with no final carrier callback is given up (slot released, contact failed, never redialled)
    # after ring timeout + max call duration + this grace.
    dialer_lost_call_grace_s: float = Field(default=120.0, ge=0, le=86400)
    # Where carriers send the campaign calls' status/AMD callbacks (this backend, as carriers reach it).
    # Empty: PUBLIC_BASE_URL.
    campaign_callback_base_url: str | None = None
    # Where carriers fetch the outbound call's answer document (the voice server, as carriers reach it); several
    # voice servers: comma-separated, used in turn. Empty: VOICE_SERVER_URL.
    campaign_answer_base_url: str | None = None
    # Signs the campaign callback URLs (carriers do not always sign, e.g. Vobiz without callback credentials).
    # Empty: derived from SERVICE_TOKEN_SECRET.
    campaign_callback_secret: SecretStr = SecretStr("")
    # Organisation-wide cap on concurrent campaign calls when an organisation has not set its own.
    campaign_org_max_concurrent_calls: int = Field(default=20, ge=1, le=10000)
    campaign_csv_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    campaign_csv_max_rows: int = Field(default=100_000, ge=1)
    # Tests only (fault injection): wait this long between recording a claim and dialling it, so a test can kill a
    # dialer that holds claims. Leave at 0.
    dialer_fault_pause_after_claim_s: float = Field(default=0.0, ge=0, le=60)
