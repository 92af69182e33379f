"""Recordings are encrypted at rest: an attacker who reads MinIO's files on disk finds no WAV header and none of the
audio, while the API still reads the object back intact (SSE-KMS with the local MinIO's static KMS key)."""

from __future__ import annotations

import os
import uuid
import wave
from pathlib import Path

from core.settings import DataSettings
from core.storage import MULTIPART_PART_SIZE, ObjectStore


def _wav(path: Path, seconds: float) -> bytes:
    frames = bytes((i * 37) % 251 for i in range(int(16000 * seconds) * 2))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(frames)
    return path.read_bytes()


def _on_disk(state_dir: Path, bucket: str, key: str) -> bytes:
    folder = state_dir / "minio" / bucket / key
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, f"no files for {key} under {folder}"
    return b"".join(p.read_bytes() for p in files)


async def test_recordings_are_encrypted_on_disk(data_services: dict[str, str], state_dir: Path,
                                                tmp_path: Path) -> None:
    settings = DataSettings()
    assert settings.s3_sse_kms_key_id, "voicectl's local MinIO runs with a KMS key"
    store = ObjectStore(settings)
    await store.ensure_bucket()
    org = uuid.uuid4().hex
    small = _wav(tmp_path / "small.wav", 1.0)
    large = _wav(tmp_path / "large.wav", (MULTIPART_PART_SIZE + 200_000) / 32000)  # a multipart upload
    plain_key = f"{org}/{uuid.uuid4().hex}/bytes.wav"
    await store.put_bytes(plain_key, small, "audio/wav")
    file_key = f"{org}/{uuid.uuid4().hex}/recording.wav"
    await store.upload_file(file_key, tmp_path / "large.wav", "audio/wav")
    # Written by a client that sends no encryption headers at all: the bucket default still encrypts it.
    bare = ObjectStore(settings.model_copy(update={"s3_sse_kms_key_id": None}))
    bare_key = f"{org}/{uuid.uuid4().hex}/bare.wav"
    await bare.put_bytes(bare_key, small, "audio/wav")

    assert await store.get_bytes(plain_key) == small
    assert await store.get_bytes(file_key) == large
    assert await store.get_bytes(file_key, offset=44, length=1000) == large[44:1044]
    assert await bare.get_bytes(bare_key) == small
    for key, audio in ((plain_key, small), (file_key, large), (bare_key, small)):
        raw = _on_disk(state_dir, store.bucket, key)
        assert b"RIFF" not in raw and b"WAVE" not in raw and b"fmt " not in raw, key
        for offset in (44, len(audio) // 2, len(audio) - 64):
            assert audio[offset:offset + 32] not in raw, (key, offset)


def test_local_minio_gets_a_kms_key(data_services: dict[str, str]) -> None:
    key_id, _, material = os.environ["MINIO_KMS_SECRET_KEY"].partition(":")
    assert key_id == os.environ["S3_SSE_KMS_KEY_ID"] and len(material) == 44
