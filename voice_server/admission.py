"""Admission control: a per-replica cap on concurrent calls.

Past the cap, every call on the replica would degrade together (event-loop lag, late audio, slow turns). Instead
a new call is refused the way a busy line is (the carrier's busy answer, `Carrier.busy_document`), so the caller
hears a busy tone and the carrier reports the call as busy; the call is also recorded as ended with `busy`, which
is how the dialer learns (a busy attempt is retried by the campaign's retry policy). /ready turns 503 while the
replica is full, so a load balancer sends new calls elsewhere.
"""

from __future__ import annotations

from voice_server.state import VoiceApp

AT_CAPACITY_DETAIL = "voice server at capacity (MAX_CONCURRENT_CALLS)"


def live_calls(app: VoiceApp) -> int:
    """Calls with a media session here, and answered calls whose media has not connected yet."""
    return len(app.calls) + app.prepared.waiting()


def at_capacity(app: VoiceApp) -> bool:
    return live_calls(app) >= app.settings.max_concurrent_calls


def admits(app: VoiceApp, call_id: str) -> bool:
    """A retried webhook for a call already admitted is never refused."""
    if call_id in app.calls or app.prepared.get(call_id) is not None:
        return True
    return not at_capacity(app)
