"""Live-operations figures on the whole stack: listen-in audio delay and live-view event delay, end to end.

Starts the stack like bench/voice_latency.py (FerretDB + MinIO, the speech servers, the backend, one voice server),
provisions a line and places `--calls` simulated calls (the telephony simulator, a test double of the carrier).
Each caller turn starts with a 0.3 s 1 kHz tone, then a spoken question. During each call the bench:
- listens in through the backend (POST /live/calls/{id}/listen, then the voice server's socket): the listen-in
  delay of a turn is from the tone's first frame leaving the simulator to when a listener playing each block as it
  arrives plays the tone's onset (its block's arrival plus its place in the block; the browser adds its own
  ~50 ms scheduling lead, not counted);
- reads the call's live view from the backend (SSE) and, as the reference, the voice server's own live feed
  (/internal/v1/calls/{id}/live, the moment each turn is emitted there): the live-view delay of a turn is from
  its note on the voice server's feed to its `turn` event on the backend's stream (outbox -> backend ingest ->
  outbox processor -> stream); the same for interim caller transcripts (voice server -> backend relay -> stream).

Prints a table, writes bench/results/live_ops.json and the "Live operations" section of BENCHMARKS.md.
    .venv/bin/python bench/live_ops_bench.py [--calls 2] [--questions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ops_bench import pct  # noqa: E402
from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from bench.voice_latency import Stack, start_stack  # noqa: E402
from core.live_feed import LiveFeedEvent  # noqa: E402
from core.service_auth import mint_service_token  # noqa: E402
from voice_server.testing.fake_carrier import FakeCarrier  # noqa: E402
from voice_server.testing.provision import SimLine, provision_line, supervisor_ticket  # noqa: E402
from voice_server.testing.runner import DEFAULT_QUESTIONS, synthesize_questions  # noqa: E402
from voice_server.testing.simulator import CallerTurn, CallScript, SimulatedCall, speech_bounds  # noqa: E402
from voice_server.testing.tones import tone, tone_share  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "live_ops.json"
START, END = "<!-- live-ops:start -->", "<!-- live-ops:end -->"
MARK_HZ = 1000.0
RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
AGENT = {
    "system_prompt": "You are the receptionist of Test Clinic. Answer in one short sentence.",
    "greeting": "Hello, thank you for calling Test Clinic. How can I help?",
    "llm": {"max_tokens": 30, "temperature": 0.2},
    "silence": {"reminder_after_s": 30.0, "max_reminders": 0},
}
Timed = tuple[float, Any]


async def _listen(ticket: dict[str, Any], out: list[Timed]) -> None:
    async with websockets.connect(ticket["url"]) as ws:
        await ws.send(ticket["ticket"])
        async for message in ws:
            if isinstance(message, bytes):
                out.append((time.monotonic(), np.frombuffer(message, dtype=np.int16)))


async def _feed(http: httpx.AsyncClient, voice_url: str, call_id: str, out: list[Timed]) -> None:
    headers = {"Authorization": f"Bearer {mint_service_token(os.environ['SERVICE_TOKEN_SECRET'], 'backend')}"}
    async with http.stream("GET", f"{voice_url}/internal/v1/calls/{call_id}/live", headers=headers,
                           timeout=httpx.Timeout(10, read=None)) as resp:
        async for line in resp.aiter_lines():
            if line.strip():
                out.append((time.monotonic(), LiveFeedEvent.model_validate_json(line)))


async def _sse(http: httpx.AsyncClient, line: SimLine, call_id: str, out: list[Timed], opened: list[float]) -> None:
    async with http.stream("GET", f"{line.backend_url}/api/v1/live/calls/{call_id}/stream", headers=line.headers,
                           timeout=httpx.Timeout(10, read=None)) as resp:
        opened.append(time.monotonic())
        event = ""
        async for text in resp.aiter_lines():
            if text.startswith("event: "):
                event = text.removeprefix("event: ")
            elif text.startswith("data: "):
                out.append((time.monotonic(), (event, json.loads(text.removeprefix("data: ")))))
                if event == "end":
                    return


def tone_onsets(blocks: list[Timed]) -> list[float]:
    """When each onset of the marker tone would play for a listener who plays every block as it arrives: its
    block's arrival plus the onset's place in the block (blocks play back to back, so a block can start no earlier
    than its arrival, and in steady state starts then)."""
    onsets, previous = [], False
    for arrived, pcm in blocks:
        for i in range(0, pcm.size - FRAME + 1, FRAME):
            frame = pcm[i: i + FRAME]
            marked = float(np.sqrt(np.mean(frame.astype(float) ** 2))) > 300 and tone_share(frame, RATE, MARK_HZ) > 0.6
            if marked and not previous:
                onsets.append(arrived + i / RATE)
            previous = marked
    return onsets


async def one_call(http: httpx.AsyncClient, stack: Stack, fake: FakeCarrier, line: SimLine, audios: list[bytes],
                   index: int) -> dict[str, list[float]]:
    caller = f"+1415555{7000 + index:04d}"
    script = CallScript(turns=[CallerTurn(audio=a, gap_s=0.8, label=f"q{i}") for i, a in enumerate(audios)],
                        hangup_after_s=1.0, max_duration_s=60 + 20 * len(audios))
    sim = SimulatedCall(carrier="twilio", answer_url=f"{stack.voice_url}/twilio/voice", account=line.account,
                        from_number=caller, to_number=line.number, script=script, http=http,
                        status_callback_url=f"{stack.voice_url}/twilio/status")
    fake.register_inbound(sim)
    run = asyncio.create_task(sim.run())
    call_id, ticket = await supervisor_ticket(http, line, caller, "listen")
    feed: list[Timed] = []
    sse: list[Timed] = []
    blocks: list[Timed] = []
    opened: list[float] = []
    readers = [asyncio.create_task(_feed(http, stack.voice_url, call_id, feed))]
    await asyncio.sleep(0.2)  # the feed first: it is the reference clock for the stream
    readers += [asyncio.create_task(_sse(http, line, call_id, sse, opened)),
                asyncio.create_task(_listen(ticket, blocks))]
    report = await run
    await asyncio.wait(readers, timeout=30)
    for reader in readers:
        reader.cancel()
    # Listen-in: each tone's first frame left the simulator at end_of_speech minus the speech's end offset.
    listen_ms = []
    onsets = tone_onsets(blocks)
    for answer, audio in zip(report.answers, audios, strict=False):
        sent = answer.end_of_speech - speech_bounds(audio, RATE)[1]
        heard = next((t for t in onsets if t > sent), None)
        if heard is not None:
            listen_ms.append((heard - sent) * 1000)
    since = opened[0] if opened else float("inf")
    fed_turns = {e.turn_index: t for t, e in feed if e.type == "turn" and t > since}
    fed_interims: dict[str, float] = {}
    for t, e in feed:
        if e.type == "interim" and t > since:
            fed_interims.setdefault(e.text, t)
    turn_ms = [(t - fed_turns[data["turn_index"]]) * 1000 for t, (kind, data) in sse
               if kind == "turn" and data["turn_index"] in fed_turns]
    interim_ms = [(t - fed_interims[data["text"]]) * 1000 for t, (kind, data) in sse
                  if kind == "interim" and data["text"] in fed_interims]
    print(f"call {index + 1}: {len(listen_ms)} listen-in marks, {len(turn_ms)} turns, {len(interim_ms)} interims")
    return {"listen_ms": listen_ms, "turn_ms": turn_ms, "interim_ms": interim_ms}


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"samples": 0}
    return {"samples": len(values), "p50_ms": pct(values, 0.5), "p95_ms": pct(values, 0.95),
            "max_ms": round(max(values), 1)}


async def run(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    fake = FakeCarrier([])
    await fake.start(stack.fake_carrier_port)
    merged: dict[str, list[float]] = {"listen_ms": [], "turn_ms": [], "interim_ms": []}
    try:
        async with httpx.AsyncClient(timeout=120.0) as http:
            line = await provision_line(http, stack.backend_url, carrier="twilio", fake_carrier=fake,
                                        agent_config=AGENT)
            speech = await synthesize_questions(http, stack.tts_url, list(DEFAULT_QUESTIONS[: args.questions]))
            marker = tone(MARK_HZ, 0.3, RATE) + b"\0" * int(0.4 * RATE) * 2
            audios = [marker + s for s in speech]
            for index in range(args.calls):
                for key, values in (await one_call(http, stack, fake, line, audios, index)).items():
                    merged[key] += values
    finally:
        await fake.stop()
    return {key: summary(values) for key, values in merged.items()} | {"raw": merged}


def section(result: dict[str, Any], args: argparse.Namespace) -> str:
    def cell(s: dict[str, Any]) -> str:
        if not s["samples"]:
            return "no samples"
        return f"{s['p50_ms']} / {s['p95_ms']} / {s['max_ms']} ms ({s['samples']})"

    return f"""{START}
## Live operations (`bench/live_ops_bench.py`)

{provenance_line()}

Whole stack on one host (speech servers, backend, one voice server), {args.calls} simulated Twilio calls of
{args.questions} spoken questions each; every caller turn starts with a 0.3 s marker tone. **The machine was shared
with other engineers' test runs (2 cores for eight people): figures are pessimistic and noisy.**

| figure (p50 / p95 / max, samples) | value | goal |
|---|---|---|
| listen-in audio delay (caller's tone leaves the simulator -> a listener playing blocks as they arrive plays it) | {cell(result['listen_ms'])} | ≤ 500 ms |
| live-view turn delay (turn emitted on the voice server -> `turn` on the backend's SSE stream) | {cell(result['turn_ms'])} | ≤ 300 ms |
| live-view interim delay (interim on the voice server -> `interim` on the backend's SSE stream) | {cell(result['interim_ms'])} | ≤ 300 ms |

Listen-in taps the call's recorder, which commits mixed audio in 0.1 s blocks while someone listens (0.5 s
otherwise; voice_server/recording.py): the delay is about one block plus delivery (the browser adds its ~50 ms
scheduling lead), more when caller audio arrives late (the recorder waits for it up to 1 s). The turn delay is the
event outbox's batching and the backend's apply; interims take the direct relay (voice server -> backend -> SSE).
Housekeeping throughput: "Operations" above. Raw numbers: `bench/results/live_ops.json`.
{END}"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--questions", type=int, default=4)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="live-ops-bench-"))
    stack = start_stack(state, None, {})
    try:
        result = asyncio.run(run(args, stack))
    finally:
        stack.stop()
    for key in ("listen_ms", "turn_ms", "interim_ms"):
        print(key, result[key])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"provenance": provenance_line(), **result}, indent=2))
    replace_section(START, END, section(result, args))


if __name__ == "__main__":
    main()
