"""Admission control: past a replica's concurrent-call cap every call on it used to degrade together. Now the next
call gets the carrier's busy answer, and the call is recorded as ended `busy` (what the dialer reads to retry it).
A real backend and a voice server with MAX_CONCURRENT_CALLS=1 (processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from voice_stack import call, provision, running_stack

from voice_server.testing.fake_carrier import FakeCarrier


@pytest.fixture(scope="module")
def capped_stack(data_services: dict[str, str], fake_carrier: FakeCarrier,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    run_dir = tmp_path_factory.mktemp("sec-admission")
    with running_stack(data_services, fake_carrier, run_dir, "sec-voice-capped", MAX_CONCURRENT_CALLS="1") as urls:
        yield urls


async def test_a_call_beyond_the_cap_gets_busy_and_is_recorded_busy(
        capped_stack: tuple[str, str], fake_carrier: FakeCarrier, http: httpx.AsyncClient) -> None:
    backend_url, voice_url = capped_stack
    for carrier, busy_markup in (("twilio", '<Reject reason="busy"'), ("vobiz", '<Hangup reason="busy"')):
        line = await provision(http, backend_url, fake_carrier, carrier)
        first = await call(line, voice_url, http).post_answer(http)
        if carrier == "twilio":  # answered: it holds the one place (for the Vobiz round too)
            assert first.status_code == 200 and "<Stream" in first.text, first.text
        second = call(line, voice_url, http)
        resp = await second.post_answer(http)
        assert resp.status_code == 200 and busy_markup in resp.text, (carrier, resp.text)
        assert "<Stream" not in resp.text

        # The call log (what the dialer and the UI read) says busy.
        deadline = time.monotonic() + 30
        reasons: list[str | None] = []
        while time.monotonic() < deadline:
            calls = (await http.get(f"{backend_url}/api/v1/calls", headers=line.headers)).json()
            items = calls.get("items", calls) if isinstance(calls, dict) else calls
            reasons = [c.get("end_reason") for c in items]
            if "busy" in reasons:
                break
            await asyncio.sleep(0.3)
        assert "busy" in reasons, reasons
    ready = await http.get(f"{voice_url}/ready")
    assert ready.status_code == 503, ready.text  # full: the load balancer sends new calls elsewhere
