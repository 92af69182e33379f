"""The voice server's FastAPI application: carrier webhooks, media WebSockets, internal endpoints."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from voice_server.config import VoiceServerSettings, get_settings
from voice_server.routes import internal, media, twilio, vobiz
from voice_server.state import VoiceApp


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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        voice = VoiceApp(settings)
        app.state.voice = voice
        await voice.start()
        try:
            yield
        finally:
            await voice.stop()

    app = FastAPI(title="Voice server", version="0.1.0", lifespan=lifespan)
    app.include_router(twilio.router)
    app.include_router(vobiz.router)
    app.include_router(media.router)
    app.include_router(internal.router)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        voice: VoiceApp = app.state.voice
        return {"status": "ok" if voice.accepting else "draining", "live_calls": len(voice.sessions),
                "outbox_pending": voice.outbox.pending}

    return app


def app() -> FastAPI:
    """Factory for `uvicorn --factory voice_server.main:app`."""
    return create_app()
