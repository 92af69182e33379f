"""Async MongoDB access (PyMongo's native asyncio client), index declarations and a health check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from core.settings import MongoSettings

__all__ = ["DuplicateKeyError", "IndexSpec", "create_mongo_client", "ensure_indexes", "mongo_health"]


@dataclass(frozen=True)
class IndexSpec:
    """One index, declared in code next to the collection that uses it."""

    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def model(self) -> IndexModel:
        kwargs: dict[str, Any] = {"unique": self.unique, **self.options}
        if self.name:
            kwargs["name"] = self.name
        return IndexModel(list(self.keys), **kwargs)


def create_mongo_client(settings: MongoSettings) -> AsyncMongoClient[dict[str, Any]]:
    # tz_aware keeps datetimes UTC-aware end to end; one client per process, shared by all requests.
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        uuidRepresentation="standard",
    )


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]], specs: Iterable[IndexSpec]) -> None:
    by_collection: dict[str, list[IndexModel]] = {}
    for spec in specs:
        by_collection.setdefault(spec.collection, []).append(spec.model())
    for name, models in by_collection.items():
        # One index per command: FerretDB 1.24 panics on a createIndexes with several indexes that already exist
        # (every restart, or a second replica starting).
        for model in models:
            await db[name].create_indexes([model])


async def mongo_health(client: AsyncMongoClient[dict[str, Any]]) -> tuple[bool, str]:
    try:
        await client.admin.command("ping")
        return True, "ok"
    except PyMongoError as exc:  # report, never raise, from a health check
        return False, f"{type(exc).__name__}: {exc}"[:300]
