"""`python -m provision` against the real MinIO: it creates the recordings bucket and one user per service, runs again
without harm, and each user can do exactly what its service does (the voice server uploads recordings, single and
multipart; the backend reads them and signs URLs) and nothing else (no reads or deletes by the voice server, no
writes by the backend, no other bucket, no admin). The knowledge bucket: the backend writes and deletes, the voice
server only reads."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from minio import Minio
from minio.error import S3Error
from pydantic import SecretStr

from core.settings import S3Settings
from core.storage import ObjectStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def provisioned(data_services: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO),
        "VOICEAGENT_STATE_DIR": str(tmp_path_factory.mktemp("provision-state")),
        "S3_ENDPOINT": data_services["S3_ENDPOINT"], "S3_BUCKET_RECORDINGS": f"rec-{uuid.uuid4().hex[:8]}",
        "S3_BUCKET_KNOWLEDGE": f"kb-{uuid.uuid4().hex[:8]}",
        # conftest exports the MinIO root keys it started MinIO with.
        "MINIO_ROOT_USER": os.environ["S3_ACCESS_KEY"], "MINIO_ROOT_PASSWORD": os.environ["S3_SECRET_KEY"],
        "S3_BACKEND_ACCESS_KEY": f"backend-{uuid.uuid4().hex[:6]}", "S3_BACKEND_SECRET_KEY": secrets.token_hex(16),
        "S3_VOICE_ACCESS_KEY": f"voice-{uuid.uuid4().hex[:6]}", "S3_VOICE_SECRET_KEY": secrets.token_hex(16),
    }
    for _ in range(2):  # idempotent: a second deployment re-applies the same users and policies
        run = subprocess.run([sys.executable, "-m", "provision"], env=env, cwd=env["VOICEAGENT_STATE_DIR"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "has policy voiceagent-backend" in run.stdout
    return env


def _client(env: dict[str, str], who: str) -> Minio:
    return Minio(env["S3_ENDPOINT"], access_key=env[f"S3_{who}_ACCESS_KEY"], secret_key=env[f"S3_{who}_SECRET_KEY"],
                 secure=False, region="us-east-1")


def _denied(call: object) -> None:
    with pytest.raises(S3Error) as err:
        call()  # type: ignore[operator]
    assert err.value.code == "AccessDenied", err.value


def _store(env: dict[str, str], who: str) -> ObjectStore:
    """The services' own storage code (core/storage.py) with that service's user."""
    return ObjectStore(S3Settings(_env_file=None, s3_endpoint=env["S3_ENDPOINT"],  # type: ignore[call-arg]
                                  s3_access_key=SecretStr(env[f"S3_{who}_ACCESS_KEY"]),
                                  s3_secret_key=SecretStr(env[f"S3_{who}_SECRET_KEY"]),
                                  s3_bucket_recordings=env["S3_BUCKET_RECORDINGS"]))


async def test_the_voice_server_user_only_uploads(provisioned: dict[str, str], tmp_path: Path) -> None:
    voice, bucket = _client(provisioned, "VOICE"), provisioned["S3_BUCKET_RECORDINGS"]
    store = _store(provisioned, "VOICE")
    await store.ensure_bucket()  # the uploader's first step: it may not look, and carries on
    await store.put_bytes("org/call-1.wav", b"RIFF" + bytes(100), content_type="audio/wav")
    big = tmp_path / "long-call.wav"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    await store.upload_file("org/call-2.wav", big, content_type="audio/wav")  # multipart (8 MiB parts)
    _denied(lambda: voice.get_object(bucket, "org/call-1.wav"))
    _denied(lambda: list(voice.list_objects(bucket)))
    _denied(lambda: voice.remove_object(bucket, "org/call-1.wav"))
    _denied(lambda: voice.make_bucket(f"other-{uuid.uuid4().hex[:8]}"))


async def test_the_backend_user_only_reads(provisioned: dict[str, str]) -> None:
    bucket = provisioned["S3_BUCKET_RECORDINGS"]
    _client(provisioned, "VOICE").put_object(bucket, "org/call-3.wav", io.BytesIO(b"RIFFdata"), 8)
    backend, store = _client(provisioned, "BACKEND"), _store(provisioned, "BACKEND")
    await store.ensure_bucket()  # the backend's start-up check
    assert await store.get_bytes("org/call-3.wav", offset=4, length=4) == b"data"
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(store.presigned_get_url("org/call-3.wav"))).content == b"RIFFdata"
    _denied(lambda: backend.put_object(bucket, "org/forged.wav", io.BytesIO(b"x"), 1))
    _denied(lambda: backend.remove_object(bucket, "org/call-3.wav"))
    _denied(lambda: backend.make_bucket(f"other-{uuid.uuid4().hex[:8]}"))


def test_knowledge_bucket_the_backend_writes_and_the_voice_server_only_reads(provisioned: dict[str, str]) -> None:
    bucket = provisioned["S3_BUCKET_KNOWLEDGE"]
    backend, voice = _client(provisioned, "BACKEND"), _client(provisioned, "VOICE")
    backend.put_object(bucket, "lancedb/chunks.lance/data/1.lance", io.BytesIO(b"rows"), 4)
    assert [o.object_name for o in voice.list_objects(bucket, prefix="lancedb/", recursive=True)] == [
        "lancedb/chunks.lance/data/1.lance"]
    assert voice.get_object(bucket, "lancedb/chunks.lance/data/1.lance").read() == b"rows"
    _denied(lambda: voice.put_object(bucket, "lancedb/forged.lance", io.BytesIO(b"x"), 1))
    _denied(lambda: voice.remove_object(bucket, "lancedb/chunks.lance/data/1.lance"))
    backend.remove_object(bucket, "lancedb/chunks.lance/data/1.lance")
    assert not list(backend.list_objects(bucket, recursive=True))
