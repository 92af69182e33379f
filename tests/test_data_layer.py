"""The shared data layer against the real FerretDB and MinIO."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from core.mongo import DuplicateKeyError, IndexSpec, create_mongo_client, ensure_indexes, mongo_health
from core.settings import DataSettings
from core.storage import MULTIPART_PART_SIZE, ObjectStore


@pytest.fixture
def settings(data_services: dict[str, str]) -> DataSettings:
    return DataSettings()


async def test_mongo_insert_find_update_and_unique_index(settings: DataSettings) -> None:
    client = create_mongo_client(settings)
    try:
        assert (await mongo_health(client)) == (True, "ok")
        db = client[settings.mongodb_db]
        coll = f"things_{uuid.uuid4().hex[:8]}"
        await ensure_indexes(db, [IndexSpec(coll, [("email", 1)], unique=True)])
        res = await db[coll].insert_one({"email": "a@example.com", "n": 1})
        doc = await db[coll].find_one({"_id": res.inserted_id})
        assert doc is not None and doc["n"] == 1
        upd = await db[coll].update_one({"_id": res.inserted_id}, {"$inc": {"n": 2}, "$set": {"x": "y"}})
        assert upd.modified_count == 1
        doc = await db[coll].find_one({"email": "a@example.com"})
        assert doc is not None and doc["n"] == 3 and doc["x"] == "y"
        with pytest.raises(DuplicateKeyError):
            await db[coll].insert_one({"email": "a@example.com"})
        assert await db[coll].count_documents({}) == 1
    finally:
        await client.close()


async def test_mongo_health_reports_unreachable_server() -> None:
    client = create_mongo_client(DataSettings(mongodb_uri="mongodb://127.0.0.1:1/", mongodb_timeout_ms=300))
    ok, detail = await mongo_health(client)
    await client.close()
    assert not ok and detail


async def test_minio_put_get_presigned_and_range(settings: DataSettings) -> None:
    store = ObjectStore(settings)
    await store.ensure_bucket()
    await store.ensure_bucket()  # idempotent
    key = f"t/{uuid.uuid4().hex}/hello.txt"
    stored = await store.put_bytes(key, b"hello world", "text/plain")
    assert stored.size == 11
    assert await store.get_bytes(key) == b"hello world"
    assert await store.get_bytes(key, offset=6, length=5) == b"world"
    url = store.presigned_get_url(key, expires=timedelta(seconds=60))
    async with httpx.AsyncClient() as http:
        resp = await http.get(url)
    assert resp.status_code == 200 and resp.content == b"hello world"
    assert (await store.stat(f"{key}.missing")) is None


async def test_presigned_url_expires(settings: DataSettings) -> None:
    import asyncio

    store = ObjectStore(settings)
    await store.ensure_bucket()
    key = f"t/{uuid.uuid4().hex}/x.bin"
    await store.put_bytes(key, b"x")
    url = store.presigned_get_url(key, expires=timedelta(seconds=1))
    await asyncio.sleep(2.2)
    async with httpx.AsyncClient() as http:
        resp = await http.get(url)
    assert resp.status_code == 403


async def test_minio_multipart_upload(settings: DataSettings, tmp_path: Path) -> None:
    store = ObjectStore(settings)
    await store.ensure_bucket()
    path = tmp_path / "big.bin"
    payload = bytes(range(256)) * ((MULTIPART_PART_SIZE * 2 + 12345) // 256)
    path.write_bytes(payload)
    key = f"t/{uuid.uuid4().hex}/big.bin"
    stored = await store.upload_file(key, path)
    assert stored.size == len(payload)
    # S3 multipart ETags end with "-<parts>"
    assert stored.etag.endswith("-3"), stored.etag
    tail = await store.get_bytes(key, offset=len(payload) - 100)
    assert tail == payload[-100:]
