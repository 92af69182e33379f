"""`voicectl test-agent SUITE.yaml`: runs an agent test suite (core/agent_tests.py) against the running platform.

A throwaway organisation, agent (the suite's config) and number are set up through the backend's API, with
carrier credentials pointing at an in-process fake carrier (a test double), as `voicectl simulate` does; each
scripted scenario is then one simulated call (voice_server/testing/agent_tests.py). Exit code 1 if any failed.

With `--agent-id` (and `--token`, an access token or API key of its organisation) the suite runs against that
agent's current config instead of the suite's `agent`, and the results are stored with that agent version
(`POST /api/v1/agents/{id}/test-runs`), where the agent editor shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import asdict
from pathlib import Path

import httpx

from core.agent_tests import AgentTestSuite, load_suite
from voice_server.testing.agent_tests import run_suite
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import SimLine, provision_line
from voice_server.testing.simulator import CallReport, CallScript, SimulatedCall
from voicectl.procs import free_port
from voicectl.simulate import _env


async def test_agent(ns: argparse.Namespace, suite: AgentTestSuite) -> int:
    voice_url = (ns.voice_url or _env("VOICE_SERVER_URL", "http://127.0.0.1:8100")).rstrip("/")
    backend_url = (ns.backend_url or _env("BACKEND_URL", "http://127.0.0.1:8000")).rstrip("/")
    # The backend verifies the line's number at its carrier API: start it with TWILIO_API_BASE_URL =
    # http://127.0.0.1:<SIMULATE_FAKE_CARRIER_PORT>, as for `voicectl simulate`.
    fake = FakeCarrier([])
    await fake.start(int(_env("SIMULATE_FAKE_CARRIER_PORT", "0")) or free_port())
    auth = {"Authorization": f"Bearer {ns.token}"}
    try:
        async with httpx.AsyncClient(timeout=60.0) as http:
            config, version = suite.agent, None
            if ns.agent_id:
                resp = await http.get(f"{backend_url}/api/v1/agents/{ns.agent_id}", headers=auth)
                if resp.status_code != 200:
                    print(f"error: agent {ns.agent_id}: HTTP {resp.status_code} {resp.text[:200]}", file=sys.stderr)
                    return 2
                config, version = resp.json()["config"], resp.json()["version"]
            line = await provision_line(http, backend_url, carrier="twilio", fake_carrier=fake,
                                        agent_config=config)

            async def place(line: SimLine, script: CallScript) -> CallReport:
                sim = SimulatedCall(carrier=line.carrier, answer_url=f"{voice_url}/twilio/voice",
                                    account=line.account, from_number="+14155550100", to_number=line.number,
                                    script=script, http=http, status_callback_url=f"{voice_url}/twilio/status")
                fake.register_inbound(sim)
                return await sim.run()

            results = await run_suite(suite, line, place, http)
            if ns.agent_id:
                body = {"version": version, "suite": str(ns.suite)[:200], "results": [asdict(r) for r in results]}
                stored = await http.post(f"{backend_url}/api/v1/agents/{ns.agent_id}/test-runs", json=body,
                                         headers=auth)
                print(f"results stored with version {version}: HTTP {stored.status_code}")
    finally:
        await fake.stop()
    for r in results:
        print(f"{r.status.upper():8s} {r.name}" + (f"  (call {r.call_id})" if r.call_id else ""))
        for failure in r.failures:
            print(f"         {failure}")
        if r.status == "failed":
            print("         transcript: " + " | ".join(r.transcript))
    return 1 if any(r.status == "failed" for r in results) else 0


def main(ns: argparse.Namespace) -> int:
    try:
        suite = load_suite(Path(ns.suite).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {ns.suite}: {exc}", file=sys.stderr)
        return 2
    if ns.agent_id and not ns.token:
        print("error: --agent-id needs --token (an access token or API key of the agent's organisation)",
              file=sys.stderr)
        return 2
    return asyncio.run(test_agent(ns, suite))
