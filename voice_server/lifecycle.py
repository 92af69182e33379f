"""A voice server's life around its calls: graceful drain, and the heartbeat that leases its live calls.

Drain (SIGTERM, or POST /internal/v1/drain): readiness goes not-ready at once (a load balancer or Kubernetes stops
sending new webhooks), answer webhooks that still arrive are refused politely (say sorry, hang up), calls already
answered run to their end, and then the process exits the way uvicorn exits on SIGTERM. A call still running after
VOICE_DRAIN_MAX_S is ended by the normal shutdown (its end and recording are kept).

Heartbeat: every VOICE_HEARTBEAT_INTERVAL_S the server tells the backend which calls it carries, and for how long
that statement holds (VOICE_CALL_LEASE_S). If the process dies (SIGKILL, a lost node), the beats stop and the backend
ends its calls with `voice_server_lost` (backend/services/call_leases.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from core.call_events import VoiceServerHeartbeat
from voice_server.backend_client import BackendClient, BackendRejected, BackendUnavailable
from voice_server.call_registry import CallRegistry
from voice_server.config import VoiceServerSettings
from voice_server.outbox import EventOutbox
from voice_server.prepared import PreparedCalls


class ServerState(Protocol):
    """What draining and the heartbeat use of the voice server (voice_server/state.py's VoiceApp)."""

    settings: VoiceServerSettings
    accepting: bool
    backend: BackendClient
    calls: CallRegistry
    outbox: EventOutbox
    prepared: PreparedCalls

log = logging.getLogger(__name__)


class Drain:
    def __init__(self, app: ServerState) -> None:
        self._app = app
        self.started_at: float | None = None  # monotonic
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._exit: Callable[[], None] | None = None
        self._exit_requested = False

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def install_sigterm(self) -> None:
        """SIGTERM starts a drain instead of uvicorn's immediate shutdown (which closes live media sockets).
        Once drained, uvicorn's own handler runs, so the process exits exactly as it would have."""
        previous = signal.getsignal(signal.SIGTERM)
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.begin)
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread (an in-process test server)
            return

        def hand_back() -> None:
            with contextlib.suppress(RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)
            if callable(previous):
                signal.signal(signal.SIGTERM, previous)
                previous(signal.SIGTERM, None)
            else:
                signal.raise_signal(signal.SIGTERM)

        self._exit = hand_back

    def begin(self, exit_after: bool = True) -> None:
        """Idempotent; a later call may still ask for the exit (SIGTERM after a drain without exit)."""
        self._exit_requested = self._exit_requested or exit_after
        if self.started_at is None:
            self.started_at = time.monotonic()
            self._app.accepting = False
            log.warning("draining: %d live calls, at most %.0f s", len(self._app.calls),
                        self._app.settings.voice_drain_max_s)
            self._task = asyncio.create_task(self._wait(), name="drain")
        elif self.finished.is_set():
            self._maybe_exit()

    def _maybe_exit(self) -> None:
        if self._exit_requested and self._exit is not None:
            exit_now, self._exit = self._exit, None
            exit_now()

    def status(self) -> dict[str, Any]:
        return {"draining": self.draining, "drained": self.finished.is_set(), "live_calls": len(self._app.calls),
                "calls_being_set_up": self._app.prepared.waiting(),
                "drain_s": round(time.monotonic() - self.started_at, 2) if self.started_at else 0.0}

    async def _wait(self) -> None:
        assert self.started_at is not None
        deadline = self.started_at + self._app.settings.voice_drain_max_s
        # noqa below: sessions end in many places; polling a dict is cheaper than an event for each.
        while time.monotonic() < deadline and (len(self._app.calls) or self._app.prepared.waiting()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await self._app.outbox.flush(max(1.0, deadline - time.monotonic()))
        log.warning("drained in %.1f s (%d calls still live)", time.monotonic() - self.started_at,
                    len(self._app.calls))
        self.finished.set()
        self._maybe_exit()

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class CallLeaseHeartbeat:
    """Renews the lease on this server's live calls at the backend. A missed beat costs nothing: the lease is a few
    beats long, and the backend only counts time in which it was itself healthy."""

    def __init__(self, app: ServerState) -> None:
        self._app = app
        self.instance_id = uuid.uuid4().hex  # a restarted server (same VOICE_SERVER_ID) is a new instance
        self.sent = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-lease-heartbeat")

    def kick(self) -> None:
        self._wake.set()

    def beat(self) -> VoiceServerHeartbeat:
        app = self._app
        calls = sorted(set(app.calls.ids()) | set(app.prepared.call_ids()))
        return VoiceServerHeartbeat(voice_server_id=app.settings.voice_server_id, instance_id=self.instance_id,
                                    calls=calls, lease_s=app.settings.voice_call_lease_s,
                                    draining=not app.accepting,
                                    url=app.settings.voice_public_base_url)

    async def _run(self) -> None:
        interval = self._app.settings.voice_heartbeat_interval_s
        while True:
            try:
                await self._app.backend.heartbeat(self.beat())
                self.sent += 1
            except (BackendUnavailable, BackendRejected) as exc:
                self.failures += 1
                log.warning("call-lease heartbeat failed: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the heartbeat die
                self.failures += 1
                log.exception("call-lease heartbeat failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
