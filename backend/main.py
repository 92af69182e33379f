"""The backend's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from backend.config import BackendSettings, get_settings
from core.mongo import create_mongo_client, ensure_indexes, mongo_health
from core.storage import ObjectStore


def create_app(settings: BackendSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(settings)
        store = ObjectStore(settings)
        app.state.settings = settings
        app.state.mongo = mongo
        app.state.db = mongo[settings.mongodb_db]
        app.state.store = store
        await ensure_indexes(app.state.db, [])
        await store.ensure_bucket()
        try:
            yield
        finally:
            await mongo.close()

    app = FastAPI(title="Voice agent platform API", version="0.1.0", lifespan=lifespan)

    @app.get("/health", tags=["health"])
    async def health(request: Request) -> dict[str, Any]:
        mongo_ok, mongo_detail = await mongo_health(request.app.state.mongo)
        s3_ok, s3_detail = await request.app.state.store.health()
        return {
            "status": "ok" if mongo_ok and s3_ok else "degraded",
            "mongo": "ok" if mongo_ok else mongo_detail,
            "minio": "ok" if s3_ok else s3_detail,
        }

    return app


app = create_app()
