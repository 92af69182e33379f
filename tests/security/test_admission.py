"""Admission control: past a replica's concurrent-call cap every call on it used to degrade together. Now the next
call gets the carrier's busy answer, and the call is recorded as ended `busy` (what the dialer reads to retry it).
A real backend and a voice server with MAX_CONCURRENT_CALLS=1 (processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from voice_stack import backend_env as make_backend_env
from voice_stack import call, provision, start_backend, start_voice

from voice_server.testing.fake_carrier import FakeCarrier


@pytest.fixture(scope="module")
def capped_stack(data_services: dict[str, str], fake_carrier: FakeCarrier,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    run_dir = tmp_path_factory.mktemp("sec-admission")
    backend, backend_url = start_backend(run_dir, make_backend_env(data_services, fake_carrier))
    try:
        voice, voice_url = start_voice(run_dir, "sec-voice-capped", backend_url, MAX_CONCURRENT_CALLS="1")
        try:
            yield backend_url, voice_url
        finally:
            voice.stop()
    finally:
        backend.stop()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


async def test_a_call_beyond_the_cap_gets_busy_and_is_recorded_busy(
        capped_stack: tuple[str, str], fake_carrier: FakeCarrier, http: httpx.AsyncClient) -> None:
    backend_url, voice_url = capped_stack
    for carrier, busy_markup in (("twilio", '<Reject reason="busy"'), ("vobiz", '<Hangup reason="busy"')):
        line = await provision(http, backend_url, fake_carrier, carrier)
        first = await call(line, voice_url, http).post_answer(http)  # answered: holds the one place
        if carrier == "twilio":
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
