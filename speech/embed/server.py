"""OpenAI-compatible `POST /v1/embeddings` over the bundled MiniLM, plus /health, /metrics and JSON logs.

Every route but /health and /metrics needs the platform's service token (speech/common/service_guard.py).
One model per process, shared by every request; inference runs in a worker thread (numpy releases the GIL), one
batch at a time so a large ingestion batch cannot starve the event loop's health checks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import uvicorn
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from pydantic import BaseModel, Field

from speech.common.logs import setup_logging
from speech.common.service_guard import ServiceTokenGuard, require_service_secret
from speech.embed.config import EmbedServerSettings
from speech.embed.model import MiniLM

log = logging.getLogger("speech.embed")

DURATION = Histogram("embed_request_seconds", "Whole /v1/embeddings request", buckets=(
    0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))


class EmbeddingRequest(BaseModel):
    input: str | list[str]
    model: str | None = None
    encoding_format: str = Field(default="float", pattern="^(float|base64)$")


class EmbeddingItem(BaseModel):
    object: str = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: str = "list"
    model: str
    data: list[EmbeddingItem]
    usage: Usage


def build_app(settings: EmbedServerSettings) -> FastAPI:
    secret = require_service_secret(settings.service_token_secret.get_secret_value(), "embeddings server")
    t0 = time.perf_counter()
    model = MiniLM(settings.model_zip())
    model.embed(["warm up"])
    log.info("embedding model loaded", extra={"model": settings.embed_model_alias,
                                                "load_s": round(time.perf_counter() - t0, 2)})
    app = FastAPI(title="voiceagent embeddings", docs_url=None, redoc_url=None)
    app.add_middleware(ServiceTokenGuard, secret=secret, server="embeddings server")
    one_at_a_time = asyncio.Semaphore(1)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> EmbeddingResponse:
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > settings.embed_max_inputs:
            raise HTTPException(400, f"input: 1 to {settings.embed_max_inputs} texts")
        if any(len(t) > settings.embed_max_chars for t in texts):
            raise HTTPException(400, f"input: at most {settings.embed_max_chars} characters per text")
        started = time.perf_counter()
        async with one_at_a_time:
            vectors = await asyncio.to_thread(model.embed, texts)
            tokens = await asyncio.to_thread(model.count_tokens, texts)
        DURATION.observe(time.perf_counter() - started)
        data = [EmbeddingItem(index=i, embedding=base64.b64encode(v.tobytes()).decode()
                              if body.encoding_format == "base64" else v.tolist()) for i, v in enumerate(vectors)]
        return EmbeddingResponse(model=settings.embed_model_alias, data=data,
                                 usage=Usage(prompt_tokens=tokens, total_tokens=tokens))

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": settings.embed_model_alias, "object": "model"}]})

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "model": settings.embed_model_alias})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def main() -> None:
    settings = EmbedServerSettings()
    setup_logging("embed", settings.log_level, settings.log_json)
    config = uvicorn.Config(build_app(settings), host=settings.embed_host, port=settings.embed_port,
                            log_config=None, access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
