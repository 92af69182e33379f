"""The repo's agent test suite (data/agent-tests/booking.yaml) run as `voicectl test-agent` runs it: scripted
scenarios as simulated calls with an espeak-ng caller voice, checked against the recorded call; the simulated
persona scenario is skipped with its reason (the embedded model cannot play a caller)."""

from __future__ import annotations

from pathlib import Path

import httpx
from voicetest_helpers import Simulate

from core.agent_tests import load_suite
from voice_server.testing.agent_tests import PERSONA_SKIP, run_suite
from voice_server.testing.provision import SimLine

SUITE = Path(__file__).resolve().parents[2] / "data" / "agent-tests" / "booking.yaml"


async def test_the_booking_suite_passes_over_the_telephony_simulator(
        simulate: Simulate, twilio_line_with, http: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    suite = load_suite(SUITE.read_text())
    line: SimLine = await twilio_line_with(**suite.agent)
    results = await run_suite(suite, line, lambda line, script: simulate(line, script), http)
    scripted, persona = results
    assert scripted.status == "passed", (scripted.failures, scripted.transcript)
    assert persona.status == "skipped" and persona.failures == [PERSONA_SKIP]
