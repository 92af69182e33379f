"""Serves the built UI at / with a fallback to index.html for client-side routes, without shadowing the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from backend.errors import ApiError

RESERVED_PREFIXES = ("api/", "internal/", "health", "docs", "redoc", "openapi.json", "metrics")


def mount_spa(app: FastAPI, dist: Path) -> None:
    root = dist.resolve()
    index = root / "index.html"

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str, request: Request) -> Response:
        if path.startswith(RESERVED_PREFIXES):
            raise ApiError(404, "not_found", "Not found")
        candidate = (root / path).resolve()
        is_file = await asyncio.to_thread(candidate.is_file)
        if path and candidate.is_relative_to(root) and is_file:
            # Hashed asset names never change content: cache them; index.html never.
            cache = "public, max-age=31536000, immutable" if path.startswith("assets/") else "no-cache"
            return FileResponse(candidate, headers={"Cache-Control": cache})
        if "." in path.rsplit("/", 1)[-1]:
            raise ApiError(404, "not_found", "Not found")  # a missing file, not a client-side route
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
