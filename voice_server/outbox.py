"""A small durable outbox for call events: written to disk first, sent in batches, retried until the backend
acknowledges them.

The backend stores events idempotently by event_id, so a batch resent after a lost acknowledgement is harmless.
Files left over from a crashed process are sent on the next start. A batch the backend rejects outright (4xx) is
moved to `rejected/` rather than deleted, so nothing is silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from core.call_events import CallEvent, CallEventBatch
from voice_server.backend_client import BackendRejected, BackendUnavailable

log = logging.getLogger(__name__)

_EVENT_LIST: TypeAdapter[list[CallEvent]] = TypeAdapter(list[CallEvent])
MAX_BATCH = 200


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class EventOutbox:
    def __init__(
        self,
        directory: Path,
        send: Callable[[CallEventBatch], Awaitable[Any]],
        retry_max_s: float = 30.0,
    ) -> None:
        self.directory = directory
        self._send = send
        self._retry_max_s = retry_max_s
        self._queue: list[CallEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seq = itertools.count()
        self._idle = asyncio.Event()
        self._idle.set()
        self.delivered = 0
        self.failures = 0
        self._files_waiting = 0

    def emit(self, event: CallEvent) -> None:
        """Never blocks and never raises: the event is queued and written to disk by the sender task."""
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    @property
    def pending(self) -> int:
        """Events waiting in memory plus batches waiting on disk (as of the sender's last look)."""
        return len(self._queue) + self._files_waiting

    async def start(self) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread((self.directory / "rejected").mkdir, exist_ok=True)
        self._wake.set()  # send anything left from a previous run
        self._task = asyncio.create_task(self._run(), name="event-outbox")

    async def flush(self, wait_s: float = 10.0) -> bool:
        """Waits until everything queued so far has been delivered (or the timeout passes)."""
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), wait_s)
            return True
        except TimeoutError:
            return False

    async def stop(self, drain_timeout: float = 5.0) -> None:
        await self.flush(drain_timeout)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Whatever is still only in memory goes to disk for the next start.
        if self._queue:
            await self._persist(self._take())

    def _take(self) -> list[CallEvent]:
        events, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        return events

    async def _persist(self, events: list[CallEvent]) -> Path:
        name = f"{time.time_ns():020d}-{next(self._seq):06d}.json"
        path = self.directory / name
        data = _EVENT_LIST.dump_json(events)
        await asyncio.to_thread(_write_atomic, path, data)
        return path

    def _pending_files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"))

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._persist(self._take())
            files = await asyncio.to_thread(self._pending_files)
            self._files_waiting = len(files)
            if not files:
                self._idle.set()
                continue
            ok = True
            for path in files:
                ok = await self._deliver(path)
                if not ok:
                    break
                while self._queue:  # keep order: new events go to disk behind the ones being sent
                    await self._persist(self._take())
            if ok:
                backoff = 0.5
                self._wake.set()
            else:
                self.failures += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max_s)
                self._wake.set()

    async def _deliver(self, path: Path) -> bool:
        try:
            raw = await asyncio.to_thread(path.read_bytes)
            events = _EVENT_LIST.validate_json(raw)
        except (OSError, ValidationError, ValueError) as exc:
            log.error("outbox file %s is unreadable (%s); moving it aside", path.name, exc)
            await asyncio.to_thread(os.replace, path, self.directory / "rejected" / path.name)
            return True
        if not events:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return True
        try:
            await self._send(CallEventBatch(events=events))
        except BackendUnavailable as exc:
            log.warning("backend unavailable, %d events kept in the outbox: %s", len(events), exc)
            return False
        except BackendRejected as exc:
            log.error("backend rejected %d events (%s); kept in %s/rejected", len(events), exc, self.directory)
            await asyncio.to_thread(os.replace, path, self.directory / "rejected" / path.name)
            return True
        except Exception as exc:  # never let the sender die
            log.exception("unexpected outbox error: %s", exc)
            return False
        self.delivered += len(events)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        self._files_waiting = max(0, self._files_waiting - 1)
        return True
