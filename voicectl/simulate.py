"""`voicectl simulate`: simulated phone calls (a test double of the carrier) against a running voice server.

Without --to, a throwaway line is set up through the backend's API (account, agent, number, and carrier
credentials pointing at an in-process fake carrier, so the agent's hang-ups and transfers land somewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from core.settings import env_files
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import provision_line
from voice_server.testing.runner import (
    DEFAULT_QUESTIONS,
    SimulationConfig,
    SimulationResult,
    run_simulation,
    synthesize_questions,
)
from voice_server.testing.simulator import CarrierAccount
from voicectl.data_services import read_env_file
from voicectl.procs import free_port


def _env(name: str, default: str) -> str:
    if os.environ.get(name):
        return os.environ[name]
    for path in reversed(env_files()):
        values = read_env_file(Path(path))
        if values.get(name):
            return values[name]
    return default


def result_json(result: SimulationResult, args: dict[str, Any]) -> dict[str, Any]:
    v2v = [s.voice_to_voice_ms for s in result.samples if s.voice_to_voice_ms is not None]
    return {
        "args": args,
        "calls": len(result.reports),
        "answered_turns": len(v2v),
        "errors": result.errors,
        "stages": result.stage_stats(),
        "greeting_ms": result.greeting_ms,
        "samples": [{"call": s.call, "turn": s.turn, **s.stages} for s in result.samples],
        "ended_by": [r.ended_by for r in result.reports],
    }


async def simulate(ns: argparse.Namespace) -> int:
    voice_url = (ns.voice_url or _env("VOICE_SERVER_URL", "http://127.0.0.1:8100")).rstrip("/")
    backend_url = (ns.backend_url or _env("BACKEND_URL", "http://127.0.0.1:8000")).rstrip("/")
    tts_url = (ns.tts_url or _env("TTS_URL", "http://127.0.0.1:8200")).rstrip("/")
    secret = _env("SERVICE_TOKEN_SECRET", "")
    fake: FakeCarrier | None = None
    async with httpx.AsyncClient(timeout=60.0) as http:
        if ns.to:
            if not ns.account_id or not ns.auth_token:
                print("error: --to needs --account-id and --auth-token to sign the webhooks", file=sys.stderr)
                return 2
            account = CarrierAccount(ns.carrier, ns.account_id, ns.auth_token)
            to_number = ns.to
        else:
            # The backend checks number ownership with the carrier: start it with TWILIO_API_BASE_URL /
            # VOBIZ_API_BASE_URL = http://127.0.0.1:<SIMULATE_FAKE_CARRIER_PORT> for this to work.
            fake = FakeCarrier([])
            await fake.start(int(_env("SIMULATE_FAKE_CARRIER_PORT", "0")) or free_port())
            line = await provision_line(http, backend_url, carrier=ns.carrier, fake_carrier=fake)
            account, to_number = line.account, line.number
            print(f"line {to_number} ({ns.carrier}) set up in organisation {line.org_id}")
        questions = await synthesize_questions(http, tts_url, list(DEFAULT_QUESTIONS), secret)
        cfg = SimulationConfig(voice_url=voice_url, carrier=ns.carrier, to_number=to_number, account=account,
                               questions=questions, concurrency=ns.concurrency, turns=ns.turns,
                               vobiz_format=ns.format, barge_in_after_s=ns.barge_in_after, dtmf=ns.dtmf,
                               service_token_secret=secret or None)
        try:
            result = await run_simulation(cfg, fake)
        finally:
            if fake is not None:
                await fake.stop()
    print(f"\n{len(result.reports)} call(s), {ns.turns} turn(s) each, concurrency {ns.concurrency}")
    for i, report in enumerate(result.reports):
        print(f"  call {i}: {report.carrier_call_id} ended by {report.ended_by or '?'}, greeting after "
              f"{report.greeting_latency_ms} ms, {len(report.answers)} answers, {len(report.clears)} clears")
    for err in result.errors:
        print(f"  error: {err}")
    print("\nvoice-to-voice and per-stage latency (ms):")
    print(result.table())
    if ns.json_out:
        await asyncio.to_thread(Path(ns.json_out).write_text,
                                json.dumps(result_json(result, {k: v for k, v in vars(ns).items() if k != "func"}),
                                           indent=2))
        print(f"\nwritten to {ns.json_out}")
    return 0 if result.reports and not result.errors else 1


def main(ns: argparse.Namespace) -> int:
    return asyncio.run(simulate(ns))
