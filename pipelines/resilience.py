"""Circuit breakers, one per AI endpoint, shared by every call in the process.

A dead endpoint should cost one timeout, not one per call: after `failure_threshold` consecutive failures (or a
failure rate above `failure_rate` over the last `window` attempts) the endpoint's breaker opens and every call
skips it at once. After `cooldown_s` one trial request is let through (half-open); its success closes the
breaker, its failure opens it again for another cool-down.

    closed --K failures / rate--> open --cool-down--> half-open --success--> closed
                                    ^                     |
                                    +------failure--------+
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 3  # consecutive failures that open the breaker
    failure_rate: float = 0.5  # ... or this share of failures over the window
    window: int = 10  # attempts the failure rate looks at (only judged once the window is full)
    cooldown_s: float = 30.0  # open -> half-open


@dataclass(frozen=True)
class BreakerSnapshot:
    endpoint: str
    state: BreakerState
    consecutive_failures: int
    failures: int
    successes: int
    opened: int  # how many times it has opened
    last_error: str


class CircuitBreaker:
    """Thread-safe: the STT stream reports from a gRPC worker thread."""

    def __init__(self, endpoint: str, settings: BreakerSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._consecutive = 0
        self._recent: deque[bool] = deque(maxlen=max(1, settings.window))  # True = failure
        self._failures = 0
        self._successes = 0
        self._opened = 0
        self._last_error = ""

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._settings.cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        return self._state

    def allow(self) -> bool:
        """May a request go to this endpoint now? In half-open state only one trial at a time is allowed."""
        with self._lock:
            state = self._current_state()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._successes += 1
            self._consecutive = 0
            self._recent.append(False)
            self._state = BreakerState.CLOSED
            self._trial_in_flight = False

    def record_failure(self, error: str = "") -> None:
        with self._lock:
            self._failures += 1
            self._consecutive += 1
            self._recent.append(True)
            self._last_error = error[:300]
            state = self._current_state()
            s = self._settings
            too_many = self._consecutive >= s.failure_threshold
            full = len(self._recent) == self._recent.maxlen
            too_often = full and sum(self._recent) / len(self._recent) >= s.failure_rate
            if state is BreakerState.HALF_OPEN or too_many or too_often:
                if state is not BreakerState.OPEN:
                    self._opened += 1
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
                self._trial_in_flight = False
                self._recent.clear()

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            return BreakerSnapshot(self.endpoint, self._current_state(), self._consecutive, self._failures,
                                   self._successes, self._opened, self._last_error)


class BreakerRegistry:
    """One breaker per endpoint URL for the life of the process."""

    def __init__(self, settings: BreakerSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: str) -> CircuitBreaker:
        key = endpoint.rstrip("/")
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(key, self.settings, self._clock)
            return breaker

    def snapshots(self) -> list[BreakerSnapshot]:
        with self._lock:
            breakers = list(self._breakers.values())
        return [b.snapshot() for b in breakers]


# The process-wide registry. The voice server configures it once from its settings at start.
_registry = BreakerRegistry()


def breakers() -> BreakerRegistry:
    return _registry


def configure_breakers(settings: BreakerSettings) -> BreakerRegistry:
    global _registry
    _registry = BreakerRegistry(settings)
    return _registry
