"""The backend's FastAPI application: the public REST API (/api/v1), the internal API for the voice server and dialer
(/internal/v1), health, metrics, and the built UI at /."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.api.routes import (
    agents,
    analytics,
    auth,
    billing,
    browser_calls,
    call_requests,
    calls,
    campaigns,
    dnc,
    internal,
    knowledge,
    org,
    phone_numbers,
    privacy,
    secrets,
    voices,
    webhooks,
)
from backend.api.routes import (
    live as live_calls,
)
from backend.campaigns.collections import INDEXES as CAMPAIGN_INDEXES
from backend.campaigns.runtime import CampaignRuntime
from backend.config import BackendSettings, get_settings
from backend.db.collections import INDEXES
from backend.errors import install_error_handlers, unauthorized
from backend.gc_tuning import freeze_startup_objects
from backend.services.container import Services
from backend.services.seed import seed_demo
from backend.web.body_limits import BodyLimit, BodyLimitMiddleware
from backend.web.middleware import (
    HttpMetrics,
    MetricsMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from backend.web.nul_guard import NulGuardMiddleware
from backend.web.spa import mount_spa
from core.log_scrub import install_token_scrubber
from core.metrics_access import metrics_allowed
from core.mongo import create_mongo_client, ensure_indexes, mongo_health
from core.storage import ObjectStore

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and the small form fields next to an uploaded CSV

TAGS = [
    {"name": "auth", "description": "Accounts, sessions (rotating refresh tokens), invitations."},
    {"name": "organization", "description": "Members and roles, API keys, carrier credentials (masked), audit log."},
    {"name": "agents", "description": "Agents and their versions; the config is one typed model shared with the "
                                      "call pipeline."},
    {"name": "phone numbers", "description": "E.164 numbers, their carrier and answering agent."},
    {"name": "calls", "description": "Call log, transcripts with per-turn latency, recordings, CSV export."},
    {"name": "webhooks", "description": "HMAC-signed outgoing webhooks with retries and a delivery log."},
    {"name": "analytics", "description": "Aggregated call statistics."},
    {"name": "campaigns", "description": "Outbound campaigns: contacts from CSV, calling windows, caps, retries, "
                                         "voicemail policy, progress, live events, outcome report."},
    {"name": "do-not-call", "description": "The organisation's do-not-call list, checked before every dial."},
    {"name": "campaign callbacks", "description": "Carrier status/AMD callbacks for campaign calls (signed URLs)."},
    {"name": "internal", "description": "Voice server and dialer only (service tokens)."},
    {"name": "system", "description": "Health and metrics."},
]

DESCRIPTION = """
Every `/api/v1` route takes `Authorization: Bearer <access token>` (from `/api/v1/auth/login`) or an organisation
API key (`X-API-Key: vak_...`), and only ever sees the caller's organisation. Roles: **owner**, **admin**, **member**
(read-only); each route states the permission it needs.

Errors always have the shape `{"error": {"code", "message", "details": [{"path", "message", "type"}], "request_id"}}`;
422 responses list each invalid field by its path (e.g. `body.config.llm.temperature`).
"""


def _operation_id(route: APIRoute) -> str:
    return route.name


def _ui_csp(settings: BackendSettings) -> str:
    scheme = "https" if settings.s3_secure else "http"
    s3 = f"{scheme}://{settings.s3_public_endpoint or settings.s3_endpoint}"
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            f"media-src 'self' blob: {s3}; connect-src 'self' ws: wss: {s3}; font-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def create_app(settings: BackendSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = HttpMetrics()
    install_token_scrubber()  # tokens in URLs never reach the access log

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        missing = settings.missing_secrets()
        if missing:
            need = "32+ random bytes each in production" if settings.production else "16+ random characters each"
            raise RuntimeError(f"Set {', '.join(missing)} ({need}, e.g. `openssl rand -hex 32`); "
                               "`voicectl` generates dev values")
        if settings.seed_demo and settings.production:
            raise RuntimeError("SEED_DEMO=true is refused when PUBLIC_BASE_URL is https: the demo owner's password "
                               "is public")
        mongo = create_mongo_client(settings)
        store = ObjectStore(settings)
        db = mongo[settings.mongodb_db]
        app.state.mongo = mongo
        app.state.store = store
        services = Services.build(settings, db, store)
        app.state.services = services
        # Campaigns: a test may set app.state.campaign_clock before startup to control time.
        app.state.campaigns = CampaignRuntime(services, getattr(app.state, "campaign_clock", None))
        try:
            await ensure_indexes(db, [*INDEXES, *CAMPAIGN_INDEXES])
            await store.ensure_bucket()
            await store.ensure_bucket(settings.s3_bucket_knowledge)
            if settings.seed_demo:
                await seed_demo(db, services.passwords, services.agents)
            services.start_background()
            if settings.dialer_enabled:
                app.state.campaigns.start_dialer()
            freeze_startup_objects()
            yield
        finally:
            await app.state.campaigns.close()
            await services.close()
            await mongo.close()

    app = FastAPI(
        title="Voice agent platform API", version="0.1.0", description=DESCRIPTION, openapi_tags=TAGS,
        lifespan=lifespan, generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)

    # Routes are matched in order and the prefixes do not overlap: the busiest (internal events, the call list)
    # go first.
    app.include_router(internal.router)
    api = APIRouter(prefix=API_PREFIX)
    for module in (calls, call_requests, agents, phone_numbers, auth, secrets, billing, org, webhooks, analytics,
                   voices, browser_calls, privacy, live_calls, knowledge):
        api.include_router(module.router)
    for router in (campaigns.router, campaigns.settings_router, campaigns.callback_router, dnc.router):
        api.include_router(router)
    app.include_router(api)

    @app.get("/health", tags=["system"])
    async def health(request: Request) -> dict[str, Any]:
        """Readiness: the database and object store answer."""
        mongo_ok, mongo_detail = await mongo_health(request.app.state.mongo)
        s3_ok, s3_detail = await request.app.state.store.health()
        return {
            "status": "ok" if mongo_ok and s3_ok else "degraded",
            "mongo": "ok" if mongo_ok else mongo_detail,
            "minio": "ok" if s3_ok else s3_detail,
        }

    @app.get("/health/live", tags=["system"])
    async def live() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["system"], response_class=PlainTextResponse)
    async def prometheus_metrics(request: Request,
                                 authorization: Annotated[str | None, Header()] = None) -> PlainTextResponse:
        """Prometheus exposition: request counts and latency by route template. Needs METRICS_TOKEN, unless the
        scraper is on this host."""
        if not metrics_allowed(settings.metrics_token.get_secret_value(), authorization,
                               request.client.host if request.client else None,
                               "x-forwarded-for" in request.headers):
            raise unauthorized("Metrics token required")
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    if settings.frontend_dist and (Path(settings.frontend_dist) / "index.html").is_file():
        mount_spa(app, Path(settings.frontend_dist))

    # Added innermost first: request ids wrap everything, so even errors carry one.
    app.add_middleware(
        CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID", "Range"],
        expose_headers=["X-Request-ID", "Content-Range", "Accept-Ranges", "Content-Disposition", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware, ui_csp=_ui_csp(settings),
                       hsts=settings.public_base_url.startswith("https://"))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(NulGuardMiddleware)  # inside the body cap: it reads the whole (capped) body
    csv_cap = settings.campaign_csv_max_bytes + MULTIPART_OVERHEAD_BYTES
    app.add_middleware(BodyLimitMiddleware, default_max_bytes=settings.max_body_bytes, limits=[
        BodyLimit(f"{API_PREFIX}/campaigns/", csv_cap, path_suffix="/contacts"),
        BodyLimit(f"{API_PREFIX}/dnc/import", csv_cap),
        BodyLimit("/internal/", settings.max_internal_body_bytes),
    ])
    app.add_middleware(RequestIdMiddleware)
    return app


app = create_app()
