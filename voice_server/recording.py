"""Call recordings: a stereo WAV (caller left, agent right) on the call's timeline, streamed to disk as the call
goes, then uploaded to MinIO at {org}/{call_id}/recording.wav, spooled and retried until it is stored.

The agent channel holds only audio the carrier actually played: agent audio is placed where the playout model
(voice_server/media/playout.py) says it starts playing, kept in memory only until its play time has passed, and dropped
when a barge-in clears the carrier's buffer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import queue
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import soxr

from core.call_events import RecordingStored
from core.storage import ObjectStore
from voice_server.beep_over import beep_over

log = logging.getLogger(__name__)

WAV_HEADER_BYTES = 44
COMMIT_BLOCK_S = 0.5  # write to disk in blocks of about this much audio
LISTEN_BLOCK_S = 0.1  # ... or of this much while someone listens in (each block goes out as it is committed)
CALLER_LATE_S = 1.0  # how long the writer waits for late caller audio before committing
CALLER_MAX_LAG_S = 0.3  # caller audio lagging the wall clock by more than this is moved forward (gap filled)


def wav_header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * 2
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, 16
    ) + b"data" + struct.pack("<I", data_bytes)


def repair_wav_header(path: Path, sample_rate: int, channels: int = 2) -> int:
    """Rewrites the sizes in the header from the file length (after a crash mid-call). Returns data bytes."""
    size = path.stat().st_size
    data = max(0, size - WAV_HEADER_BYTES)
    data -= data % (channels * 2)
    with open(path, "r+b") as fh:
        fh.seek(0)
        fh.write(wav_header(sample_rate, channels, data))
        fh.truncate(WAV_HEADER_BYTES + data)
    return data


class DiskWriter:
    """One background thread does every recording write in the process, in order, off the event loop."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name="recording-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((fn, fut))
        return fut

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, fut = item
            try:
                fut.set_result(fn())
            except BaseException as exc:  # reported to whoever awaits the future
                fut.set_exception(exc)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class FinishedRecording:
    path: Path
    sample_rate: int
    duration_s: float
    size_bytes: int


def _to_int16(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)


class StereoRecorder:
    def __init__(self, path: Path, sample_rate: int, writer: DiskWriter, t0: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self._writer = writer
        self._t0 = t0
        self._clock = clock
        self._fh: IO[bytes] | None = None
        self._written = 0  # samples per channel already handed to the writer
        self._caller = np.zeros(0, dtype=np.int16)  # from _written
        self._agent = np.zeros(0, dtype=np.int16)  # from _written
        self._closed = False
        self._failed: BaseException | None = None
        # Listen-in taps (voice_server/routes/listen.py): each committed block, caller and agent mixed to mono.
        self.listeners: list[Callable[[bytes], None]] = []
        self._writer.submit(self._open)

    # -- timeline ---------------------------------------------------------------------------------------------
    def _now_idx(self) -> int:
        return int((self._clock() - self._t0) * self.sample_rate)

    def _samples(self, pcm: bytes, rate: int) -> np.ndarray:
        samples = _to_int16(pcm)
        if rate != self.sample_rate and samples.size:
            samples = soxr.resample(samples, rate, self.sample_rate).astype(np.int16)
        return samples

    @staticmethod
    def _place(buf: np.ndarray, offset: int, samples: np.ndarray) -> np.ndarray:
        end = offset + samples.size
        if end > buf.size:
            buf = np.concatenate([buf, np.zeros(end - buf.size, dtype=np.int16)])
        buf[offset:end] = samples
        return buf

    # -- input ------------------------------------------------------------------------------------------------
    def add_caller(self, pcm: bytes, sample_rate: int, at_s: float | None = None) -> None:
        """`at_s`: when the frame arrived on the call timeline (defaults to now)."""
        if self._closed:
            return
        samples = self._samples(pcm, sample_rate)
        caller_end = self._written + self._caller.size
        # Carriers send caller audio continuously; if it arrives late (a stall), keep it near the wall clock
        # so both channels stay aligned, leaving silence in the gap.
        arrived = int(at_s * self.sample_rate) if at_s is not None else self._now_idx()
        earliest = arrived - samples.size - int(CALLER_MAX_LAG_S * self.sample_rate)
        pos = max(caller_end, earliest, self._written)
        self._caller = self._place(self._caller, pos - self._written, samples)
        self._maybe_commit()

    def add_agent(self, pcm: bytes, sample_rate: int, start_s: float) -> None:
        if self._closed:
            return
        samples = self._samples(pcm, sample_rate)
        pos = int(start_s * self.sample_rate)
        if pos < self._written:  # already on disk: only the part still ahead can be placed
            samples = samples[self._written - pos:]
            pos = self._written
        if samples.size:
            self._agent = self._place(self._agent, pos - self._written, samples)

    def drop_agent_after(self, t_s: float) -> None:
        """The carrier dropped its buffer at t_s (barge-in): nothing scheduled after that was heard."""
        cut = max(0, int(t_s * self.sample_rate) - self._written)
        if cut < self._agent.size:
            self._agent = self._agent[:cut]

    # -- output -----------------------------------------------------------------------------------------------
    def _maybe_commit(self) -> None:
        now = self._now_idx()
        caller_end = self._written + self._caller.size
        horizon = max(min(caller_end, now), now - int(CALLER_LATE_S * self.sample_rate))
        block_s = LISTEN_BLOCK_S if self.listeners else COMMIT_BLOCK_S
        if horizon - self._written >= int(block_s * self.sample_rate):
            self._commit(horizon)

    def _commit(self, horizon: int) -> None:
        n = horizon - self._written
        if n <= 0:
            return
        left = self._caller[:n]
        right = self._agent[:n]
        block = np.zeros(2 * n, dtype=np.int16)
        block[0: 2 * left.size: 2] = left
        block[1: 2 * right.size: 2] = right
        self._caller = self._caller[n:]
        self._agent = self._agent[n:]
        self._written = horizon
        data = block.tobytes()
        self._writer.submit(lambda: self._write(data))
        if self.listeners:
            mono = (block.reshape(-1, 2).astype(np.int32).sum(axis=1) // 2).astype(np.int16).tobytes()
            for listener in list(self.listeners):
                listener(mono)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in _finish
        self._fh.write(wav_header(self.sample_rate, 2, 0))

    def _write(self, data: bytes) -> None:
        if self._fh is None:
            return
        try:
            self._fh.write(data)
        except OSError as exc:  # disk full etc.: keep the call going, report at close
            self._failed = exc

    def _finish(self) -> int:
        if self._fh is None:
            raise OSError("recording file was never opened")
        self._fh.flush()
        data_bytes = self._fh.tell() - WAV_HEADER_BYTES
        self._fh.seek(0)
        self._fh.write(wav_header(self.sample_rate, 2, data_bytes))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        if self._failed:
            raise self._failed
        return data_bytes

    async def close(self, end_s: float) -> FinishedRecording:
        """Writes the rest (agent audio scheduled after the end was never played) and fixes the header."""
        if not self._closed:
            self._closed = True
            self.drop_agent_after(end_s)
            end = max(self._written + self._caller.size, self._written + self._agent.size)
            self._commit(end)
        data_bytes = await asyncio.wrap_future(self._writer.submit(self._finish))
        frames = data_bytes // 4
        return FinishedRecording(self.path, self.sample_rate, frames / self.sample_rate,
                                 data_bytes + WAV_HEADER_BYTES)


@dataclass(frozen=True)
class PendingUpload:
    org_id: str
    call_id: str
    sample_rate: int
    duration_s: float

    @property
    def key(self) -> str:
        return f"{self.org_id}/{self.call_id}/recording.wav"


class RecordingUploader:
    """Moves finished recordings to `pending/`, uploads them (multipart for big files) and retries forever with
    backoff while MinIO is away. A recording is deleted locally only after MinIO has it."""

    def __init__(self, store: ObjectStore, spool_dir: Path, on_stored: Callable[[RecordingStored], None],
                 retry_max_s: float = 300.0) -> None:
        self._store = store
        self.active_dir = spool_dir / "recordings" / "active"
        self.pending_dir = spool_dir / "recordings" / "pending"
        self._on_stored = on_stored
        self._retry_max_s = retry_max_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._bucket_ready = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.uploaded = 0

    def active_path(self, call_id: str) -> Path:
        return self.active_dir / f"{call_id}.wav"

    async def start(self, live_call_ids: Callable[[], set[str]]) -> None:
        await asyncio.to_thread(self.active_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self.pending_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._recover_orphans, live_call_ids())
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="recording-uploader")

    def _recover_orphans(self, live: set[str]) -> None:
        """Recordings left in active/ by a crashed process: fix their headers and queue them for upload."""
        for wav in self.active_dir.glob("*.wav"):
            meta_path = wav.with_suffix(".json")
            if wav.stem in live or not meta_path.exists():
                continue
            try:
                meta = json.loads(meta_path.read_text())
                data = repair_wav_header(wav, int(meta["sample_rate"]))
                meta["duration_s"] = data / 4 / int(meta["sample_rate"])
                (self.pending_dir / meta_path.name).write_text(json.dumps(meta))
                os.replace(wav, self.pending_dir / wav.name)
                meta_path.unlink(missing_ok=True)
                log.warning("recovered recording %s left by a previous run", wav.name)
            except (OSError, ValueError, KeyError) as exc:
                log.error("cannot recover recording %s: %s", wav.name, exc)

    def write_active_meta(self, call_id: str, org_id: str, sample_rate: int) -> None:
        meta = {"org_id": org_id, "call_id": call_id, "sample_rate": sample_rate, "duration_s": 0.0}
        (self.active_dir / f"{call_id}.json").write_text(json.dumps(meta))

    async def submit(self, org_id: str, call_id: str, rec: FinishedRecording) -> None:
        meta = {"org_id": org_id, "call_id": call_id, "sample_rate": rec.sample_rate, "duration_s": rec.duration_s}

        def _move() -> None:
            (self.pending_dir / f"{call_id}.json").write_text(json.dumps(meta))
            os.replace(rec.path, self.pending_dir / f"{call_id}.wav")
            (self.active_dir / f"{call_id}.json").unlink(missing_ok=True)

        await asyncio.to_thread(_move)
        self._idle.clear()
        self._wake.set()

    async def flush(self, wait_s: float) -> bool:
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), wait_s)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _pending(self) -> list[tuple[Path, PendingUpload]]:
        items = []
        for meta_path in sorted(self.pending_dir.glob("*.json")):
            wav = meta_path.with_suffix(".wav")
            try:
                meta = json.loads(meta_path.read_text())
                items.append((wav, PendingUpload(str(meta["org_id"]), str(meta["call_id"]),
                                                 int(meta["sample_rate"]), float(meta["duration_s"]))))
            except (OSError, ValueError, KeyError) as exc:
                log.error("bad recording metadata %s: %s", meta_path, exc)
        return items

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            items = await asyncio.to_thread(self._pending)
            failed = False
            for wav, job in items:
                if not await self._upload(wav, job):
                    failed = True
                    break
            if not failed:
                backoff = 1.0
                if not await asyncio.to_thread(self._pending):
                    self._idle.set()
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._retry_max_s)
            self._wake.set()

    async def _upload(self, wav: Path, job: PendingUpload) -> bool:
        try:
            if not self._bucket_ready:
                await self._store.ensure_bucket()
                self._bucket_ready = True
            stored = await self._store.upload_file(job.key, wav, content_type="audio/wav")
        except FileNotFoundError:
            log.error("recording %s vanished before upload", wav)
            await asyncio.to_thread(wav.with_suffix(".json").unlink, missing_ok=True)
            return True
        except Exception as exc:  # MinIO down, network, credentials: keep the file and retry later
            log.warning("recording upload of %s failed, will retry: %s", job.key, exc)
            return False
        self._on_stored(RecordingStored(
            call_id=job.call_id, bucket=stored.bucket, key=stored.key, size_bytes=stored.size,
            duration_s=round(job.duration_s, 3), sample_rate=job.sample_rate, channels=2,
            event_id=f"{job.call_id}-recording"[:64],
        ))

        def _cleanup() -> None:
            wav.unlink(missing_ok=True)
            wav.with_suffix(".json").unlink(missing_ok=True)

        await asyncio.to_thread(_cleanup)
        self.uploaded += 1
        return True


class CallRecording:
    """One call's recording, from the pipeline's set-up to its hand-over to the uploader."""

    def __init__(self, writer: DiskWriter, uploader: RecordingUploader, org_id: str, call_id: str,
                 sample_rate: int, t0: float) -> None:
        self._uploader = uploader
        self._org_id = org_id
        self._call_id = call_id
        path = uploader.active_path(call_id)
        # Written beside the WAV so a crash mid-call still leaves enough to upload it later.
        writer.submit(lambda: uploader.write_active_meta(call_id, org_id, sample_rate))
        self.recorder = StereoRecorder(path, sample_rate, writer, t0=t0)
        self._writer = writer
        self._masks: list[tuple[int, int]] = []

    def mask(self, start_ms: int, end_ms: int) -> None:
        """Beep over the caller's audio in this span once the recording is finished (voice_server/beep_over.py)."""
        self._masks.append((start_ms, end_ms))

    async def finish(self, end_s: float) -> None:
        try:
            rec = await self.recorder.close(end_s)
            if self._masks:
                masks = list(self._masks)
                await asyncio.wrap_future(self._writer.submit(lambda: beep_over(rec.path, rec.sample_rate, masks)))
            await self._uploader.submit(self._org_id, self._call_id, rec)
        except Exception:
            log.exception("call %s: could not finish the recording (it stays in the spool)", self._call_id)
