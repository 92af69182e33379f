"""Keeps the processes of `voicectl run` / `voicectl services up` alive until Ctrl-C.

Why: a speech server that dies (an engine crash, the OOM killer) used to leave the stack half up with every call
ending in the canned apology, or stopped everything on the first exit. A crashed process is restarted with
exponential back-off and the event is printed; a process that keeps crashing is a broken install or machine, not
a passing fault, so after `max_crashes` exits within `window_s` the whole stack stops with that process's log tail.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from voicectl.procs import ManagedProcess, ServiceError


def exit_description(code: int) -> str:
    """'code 3' or 'signal SIGSEGV' (Popen reports a signal as a negative code)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class _Watch:
    proc: ManagedProcess
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None


@dataclass
class Supervisor:
    processes: Sequence[ManagedProcess]
    max_crashes: int = 5
    window_s: float = 300.0
    backoff_s: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    poll_s: float = 0.5
    say: Callable[[str], None] = print

    def run(self, stop: threading.Event | None = None) -> int:
        """Watches until `stop` is set, SIGTERM or Ctrl-C (0), or until a process crashes too often (1)."""
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        watches = [_Watch(p) for p in self.processes]
        try:
            while not stop.wait(self.poll_s):
                for watch in watches:
                    if not self._check(watch):
                        return 1
        except KeyboardInterrupt:
            pass
        return 0

    def _check(self, watch: _Watch) -> bool:
        """False when the stack must stop."""
        proc, now = watch.proc, time.monotonic()
        if watch.restart_at is not None:
            if now >= watch.restart_at:
                watch.restart_at = None
                try:
                    proc.start()
                    self.say(f"[voicectl] {proc.name} restarted (pid {proc.proc.pid if proc.proc else '?'})")
                except ServiceError as exc:
                    self.say(f"[voicectl] {proc.name} failed to restart: {exc}")
                    return self._crashed(watch, now)
            return True
        if proc.proc is None or proc.proc.poll() is None:
            return True
        self.say(f"[voicectl] {proc.name} exited ({exit_description(proc.proc.returncode)})")
        return self._crashed(watch, now)

    def _crashed(self, watch: _Watch, now: float) -> bool:
        watch.crashes = [t for t in watch.crashes if now - t < self.window_s] + [now]
        proc = watch.proc
        if len(watch.crashes) >= self.max_crashes:
            self.say(f"[voicectl] {proc.name} crashed {len(watch.crashes)} times in {self.window_s:.0f} s; "
                     f"stopping the stack. Last lines of {proc.log_file}:\n{proc.tail_log(30)}")
            return False
        delay = self.backoff_s[min(len(watch.crashes) - 1, len(self.backoff_s) - 1)]
        self.say(f"[voicectl] restarting {proc.name} in {delay:.0f} s "
                 f"(crash {len(watch.crashes)} of {self.max_crashes} allowed in {self.window_s:.0f} s)")
        proc.stop()
        watch.restart_at = now + delay
        return True
