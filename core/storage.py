"""Object storage (MinIO / any S3) for recordings: buckets, uploads (multipart), presigned URLs, ranged reads.

The minio client is synchronous; every call is pushed to a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import S3Error
from minio.sseconfig import Rule, SSEConfig

from core.settings import S3Settings

log = logging.getLogger(__name__)

# 8 MiB parts: few requests per recording, and well above S3's 5 MiB minimum part size.
MULTIPART_PART_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str


class ObjectStore:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket_recordings
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
            maxsize=32,
        )
        self._client = self._make_client(settings.s3_endpoint, http)
        # Presigning is pure computation; a separate client can carry the public host.
        public = settings.s3_public_endpoint or settings.s3_endpoint
        self._signer = self._make_client(public, http)

    def _make_client(self, endpoint: str, http: urllib3.PoolManager) -> Minio:
        return Minio(
            endpoint,
            access_key=self.settings.s3_access_key.get_secret_value(),
            secret_key=self.settings.s3_secret_key.get_secret_value(),
            secure=self.settings.s3_secure,
            region=self.settings.s3_region,
            http_client=http,
        )

    async def ensure_bucket(self, bucket: str | None = None) -> None:
        name = bucket or self.bucket

        def _ensure() -> None:
            try:
                exists = self._client.bucket_exists(name)
            except S3Error as exc:
                # A deployment's per-service users may not look at buckets (the voice server's may only upload):
                # there the provisioning job (python -m provision) made the bucket, and an upload says if it did not.
                if exc.code == "AccessDenied":
                    return
                raise
            if not exists:
                try:
                    self._client.make_bucket(name)
                except S3Error as exc:  # another process won the race
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        await asyncio.to_thread(_ensure)
        if self.settings.s3_sse_kms_key_id:
            await self._ensure_default_encryption(name, self.settings.s3_sse_kms_key_id)

    async def _ensure_default_encryption(self, bucket: str, key_id: str) -> None:
        """Bucket default SSE-KMS: whatever writes to the bucket, the data lands encrypted."""
        def _set() -> None:
            try:
                self._client.set_bucket_encryption(bucket, SSEConfig(Rule.new_sse_kms_rule(key_id)))
            except S3Error as exc:  # managed outside (IaC) and not ours to change: per-object headers still apply
                log.warning("could not set default encryption on bucket %s: %s", bucket, exc.code)

        await asyncio.to_thread(_set)

    def _sse_headers(self, key: str) -> dict[str, str]:
        """SSE-KMS request headers for an object; its organisation (the key's first segment) is the encryption
        context, so a data key unwrapped for one organisation's object cannot serve another's. Sent as headers, not
        minio's SseKMS, which refuses plain HTTP even though only SSE-C needs TLS (local MinIO runs without it)."""
        key_id = self.settings.s3_sse_kms_key_id
        if not key_id:
            return {}
        context = json.dumps({"org": key.split("/", 1)[0]}, separators=(",", ":")).encode()
        return {"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": key_id,
                "X-Amz-Server-Side-Encryption-Context": base64.b64encode(context).decode()}

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> StoredObject:
        def _put() -> StoredObject:
            res = self._client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                                         metadata=self._sse_headers(key))  # type: ignore[arg-type]
            return StoredObject(self.bucket, key, len(data), res.etag or "", content_type)

        return await asyncio.to_thread(_put)

    async def upload_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> StoredObject:
        """Streams a file from disk; files above the part size go up as an S3 multipart upload."""

        def _put() -> StoredObject:
            res = self._client.fput_object(
                self.bucket, key, str(path), content_type=content_type, part_size=MULTIPART_PART_SIZE,
                metadata=self._sse_headers(key),  # type: ignore[arg-type]
            )
            return StoredObject(self.bucket, key, path.stat().st_size, res.etag or "", content_type)

        return await asyncio.to_thread(_put)

    async def get_bytes(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        def _get() -> bytes:
            resp = self._client.get_object(self.bucket, key, offset=offset, length=length)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return await asyncio.to_thread(_get)

    async def stat(self, key: str) -> StoredObject | None:
        def _stat() -> StoredObject | None:
            try:
                st = self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    return None
                raise
            return StoredObject(self.bucket, key, st.size or 0, st.etag or "", st.content_type or "")

        return await asyncio.to_thread(_stat)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.remove_object, self.bucket, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Removes every object whose key starts with `prefix` (a call's recording and any parts); returns how many."""
        def _delete() -> int:
            keys = [o.object_name for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                    if o.object_name]
            for key in keys:
                self._client.remove_object(self.bucket, key)
            return len(keys)

        return await asyncio.to_thread(_delete)

    def presigned_get_url(self, key: str, expires: timedelta = timedelta(minutes=15)) -> str:
        return self._signer.presigned_get_object(self.bucket, key, expires=expires)

    async def health(self) -> tuple[bool, str]:
        try:
            await asyncio.to_thread(self._client.bucket_exists, self.bucket)
            return True, "ok"
        except Exception as exc:  # report, never raise, from a health check
            return False, f"{type(exc).__name__}: {exc}"[:300]
