"""The voice server's FastAPI application: carrier webhooks, media WebSockets, internal endpoints."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.log_scrub import install_token_scrubber
from core.metrics_access import metrics_allowed
from voice_server.admission import at_capacity
from voice_server.config import VoiceServerSettings, get_settings
from voice_server.routes import browser, carriers, internal, listen, media, takeover
from voice_server.state import VoiceApp

log = logging.getLogger(__name__)


def _configure_logging(settings: VoiceServerSettings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:  # pipecat logs through loguru; keep its chatter at our level
        import sys

        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="WARNING" if settings.log_level.upper() != "DEBUG" else "DEBUG")
    except ImportError:
        pass


def create_app(settings: VoiceServerSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    _configure_logging(settings)
    install_token_scrubber()  # tokens in URLs never reach the access log

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        weak = settings.weak_secrets()
        if weak:
            raise RuntimeError(f"Set {', '.join(weak)} (32+ random bytes each in production, e.g. "
                               "`openssl rand -hex 32`)")
        if not settings.vobiz_require_signature:
            log.warning("VOBIZ_REQUIRE_SIGNATURE=false: unsigned Vobiz webhooks are accepted. Local development "
                        "only; anyone who knows a number can start calls on it.")
        voice = VoiceApp(settings)
        app.state.voice = voice
        await voice.start()
        # What is loaded by now (modules, models, shared clients) lives as long as the process: frozen, the
        # collector's full passes skip it, and a pass during calls pauses the event loop for less.
        gc.freeze()
        voice.drain.install_sigterm()  # SIGTERM drains first (voice_server/lifecycle.py)
        try:
            yield
        finally:
            await voice.stop()

    app = FastAPI(title="Voice server", version="0.1.0", lifespan=lifespan)
    app.include_router(carriers.router)
    app.include_router(media.router)
    app.include_router(browser.router)
    app.include_router(internal.router)
    app.include_router(listen.router)
    app.include_router(takeover.router)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        voice: VoiceApp = app.state.voice
        return {"status": "ok" if voice.accepting else "draining", "live_calls": len(voice.calls),
                "outbox_pending": voice.outbox.pending}

    @app.get("/ready", tags=["health"])
    async def ready() -> JSONResponse:
        """Readiness (apart from /health, the liveness check): 503 while starting or draining, so a load balancer
        or Kubernetes sends new calls elsewhere while this replica's live calls finish."""
        voice: VoiceApp | None = getattr(app.state, "voice", None)
        ok = voice is not None and voice.ready and voice.accepting and not at_capacity(voice)
        body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
        if voice is not None:
            body |= voice.drain.status()
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus_metrics(request: Request,
                                 authorization: Annotated[str | None, Header()] = None) -> PlainTextResponse:
        """Prometheus exposition: calls, per-stage turn latency, output pacing, event-loop lag, errors. Needs
        METRICS_TOKEN, unless the scraper is on this host."""
        if not metrics_allowed(settings.metrics_token.get_secret_value(), authorization,
                               request.client.host if request.client else None,
                               "x-forwarded-for" in request.headers):
            raise HTTPException(401, "Metrics token required", headers={"WWW-Authenticate": "Bearer"})
        voice: VoiceApp = app.state.voice
        return PlainTextResponse(generate_latest(voice.metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    return app


def app() -> FastAPI:
    """Factory for `uvicorn --factory voice_server.main:app`."""
    return create_app()
