"""Figures for the business features (issue 17): what the pre-call lookup adds to the greeting over the webhook's
own time, and how long the post-call analysis takes per call with the embedded LLM (SmolLM2-135M, JSON mode).

    PYTHONPATH=$PWD .venv/bin/python -m bench.business_bench [--calls 5]

The lookup is measured in-process (voice_server/precall.py against a local HTTP server that records its own
handler time): the greeting waits exactly for the lookup, so lookup time minus handler time is what it adds. The
analysis runs the backend's CallAnalyzer request against a freshly started embedded LLM server."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request

from backend.config import BackendSettings
from backend.services.call_analysis import CallAnalyzer
from bench.provenance import provenance_line
from core.agent_config import AgentConfig, AnalysisConfig
from core.call_events import ResolvedAgent
from core.service_auth import ServiceTokenSource
from voice_server.precall import lookup_context
from voicectl.launch import llm_process
from voicectl.procs import free_port
from voicectl.speech_auth import local_service_secret


async def lookup_overhead(delay_ms: float, rounds: int) -> tuple[float, float]:
    """(median lookup ms, median added ms over the handler's own time)."""
    handler_ms: list[float] = []
    app = FastAPI()

    @app.post("/context")
    async def context(request: Request) -> dict[str, Any]:
        t0 = time.perf_counter()
        await request.json()
        await asyncio.sleep(delay_ms / 1000)
        handler_ms.append((time.perf_counter() - t0) * 1000)
        return {"first_name": "Priya", "day": "Thursday"}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    agent = ResolvedAgent(org_id="o", agent_id="a", agent_version=1, agent_name="A", config=AgentConfig(
        context_webhook={"url": f"http://127.0.0.1:{port}/context", "timeout_ms": 3000}))
    totals, added = [], []
    async with httpx.AsyncClient() as http:
        for i in range(rounds + 3):
            found = await lookup_context(http, agent, call_id=f"c{i}", direction="inbound",
                                         from_number="+14155550100", to_number="+14155550199", variables={})
            assert found is not None and found.ok, found
            if i >= 3:  # warm connections, as on a running voice server
                totals.append(found.duration_ms)
                added.append(found.duration_ms - handler_ms[-1])
    server.should_exit = True
    await task
    return statistics.median(totals), statistics.median(added)


TRANSCRIPT = [("agent", "Hello, Test Clinic, how can I help?"),
              ("caller", "Can I book an appointment for next Tuesday?"),
              ("agent", "Yes, Tuesday at ten in the morning is booked for you."),
              ("caller", "Great, and please call me back if anything changes. Goodbye.")]


async def analysis_times(calls: int) -> list[float]:
    port = free_port()
    run = Path(tempfile.mkdtemp(prefix="business-bench-"))
    proc = llm_process(run / "llm", port=port, env={"VOICEAGENT_STATE_DIR": str(run), "LLM_N_CTX": "2048"})
    proc.start()
    try:
        settings = BackendSettings(analysis_llm_base_url=f"http://127.0.0.1:{port}/v1")
        config = AnalysisConfig(success_rubric="an appointment was booked", extraction_schema={
            "type": "object", "properties": {"appointment_day": {"type": "string"},
                                             "callback_requested": {"type": "boolean"}}})
        turns = [{"speaker": s, "text": t} for s, t in TRANSCRIPT]
        async with httpx.AsyncClient() as http:
            analyzer = CallAnalyzer(None, settings, http,  # type: ignore[arg-type]
                                    ServiceTokenSource(local_service_secret(), "bench"))  # no database: _ask only
            times = []
            for _ in range(calls + 1):
                t0 = time.perf_counter()
                answer = await analyzer._ask(config, turns)
                times.append((time.perf_counter() - t0) * 1000)
                print("  answer:", answer)
        return times[1:]  # the first loads the prompt cache
    finally:
        proc.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    print(provenance_line())
    for delay in (0.0, 200.0):
        total, added = await lookup_overhead(delay, args.rounds)
        print(f"pre-call lookup, webhook handler {delay:.0f} ms: lookup {total:.1f} ms median, "
              f"added over the handler {added:.1f} ms median ({args.rounds} rounds)")
    times = await analysis_times(args.calls)
    print(f"post-call analysis (SmolLM2-135M, JSON mode, 4-turn call): median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms over {len(times)} calls")


if __name__ == "__main__":
    asyncio.run(main())
