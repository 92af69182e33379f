"""Runs an agent test suite (core/agent_tests.py) through the real call path: each scripted scenario is a simulated
inbound call (the telephony simulator, a test double of the carrier) on a line whose agent is under test, the
caller's lines spoken by espeak-ng (a voice unlike the agent's Piper voice), and the expectations checked against
the call as the backend recorded it.

Simulated-persona scenarios need an LLM that can play a caller with a goal (pipecat.evals' persona and judge);
the embedded SmolLM2-135M cannot, so they are reported as skipped with that reason, never faked.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx
import numpy as np
import soxr

from core.agent_tests import AgentTestSuite, Scenario, check
from voice_server.answering import inbound_call_id
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallReport, CallScript

CALLER_VOICE = ("en-us", 140)  # espeak-ng: another synthesiser and accent than the agent's Piper voice
PERSONA_SKIP = ("simulated personas need a stronger LLM than the embedded SmolLM2-135M to play the caller and "
                "judge the call (pipecat.evals); only scripted scenarios run here")

PlaceCall = Callable[[SimLine, CallScript], Awaitable[CallReport]]


@dataclass
class ScenarioResult:
    name: str
    status: Literal["passed", "failed", "skipped"]
    failures: list[str] = field(default_factory=list)
    call_id: str | None = None
    transcript: list[str] = field(default_factory=list)


def caller_speech(text: str, voice: tuple[str, int] = CALLER_VOICE) -> bytes:
    """8 kHz PCM16 of `text` in an espeak-ng voice."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["espeak-ng", "-v", voice[0], "-s", str(voice[1]), "-w", out.name, text], check=True,
                       timeout=30)
        with wave.open(out.name) as wav:
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return np.clip(soxr.resample(samples.astype(np.float32), rate, 8000), -32768, 32767).astype("<i2").tobytes()


async def run_scenario(scenario: Scenario, line: SimLine, place: PlaceCall, http: httpx.AsyncClient,
                       wait_s: float = 60.0) -> ScenarioResult:
    if scenario.kind == "simulated":
        return ScenarioResult(scenario.name, "skipped", [PERSONA_SKIP])
    turns = [CallerTurn(audio=await asyncio.to_thread(caller_speech, c.say) if c.say else b"", dtmf=c.keys,
                        gap_s=1.0, label=f"line{i}") for i, c in enumerate(scenario.caller)]
    report = await place(line, CallScript(turns=turns, hangup_after_s=2.0, max_duration_s=90))
    call_id = inbound_call_id(line.carrier, report.carrier_call_id)
    call = await _recorded(http, line, call_id, wait_s)
    transcript = [f"{t['speaker']}: {t['text']}" for t in call.get("turns", [])]
    failures = check(scenario.expect, call)
    return ScenarioResult(scenario.name, "failed" if failures else "passed", failures, call_id, transcript)


async def run_suite(suite: AgentTestSuite, line: SimLine, place: PlaceCall,
                    http: httpx.AsyncClient) -> list[ScenarioResult]:
    return [await run_scenario(s, line, place, http) for s in suite.scenarios]


async def _recorded(http: httpx.AsyncClient, line: SimLine, call_id: str, wait_s: float) -> dict:  # type: ignore[type-arg]
    """The call's detail once it has ended (events reach the backend asynchronously)."""
    deadline = time.monotonic() + wait_s
    call: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        resp = await http.get(f"{line.backend_url}/api/v1/calls/{call_id}", headers=line.headers)
        if resp.status_code == 200:
            call = resp.json()
            if call.get("ended_at"):
                return call
        await asyncio.sleep(0.5)
    return call
