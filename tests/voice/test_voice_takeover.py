"""A supervisor takes a live call over from the browser, for real: the backend hands an admin a take-over ticket
for the voice server holding the call; on that socket the supervisor hears the caller and the caller hears the
supervisor (the simulator records what the caller heard), the agent says nothing more, and the call still ends with
its recording. Attacker checks: a listen-in ticket does not take a call over. (Member 403 and ended-call 409:
tests/backend/test_live.py.)

Also the live view's interim transcripts: the caller's words so far reach the call's SSE stream from the voice
server, and are not stored as turns."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
import websockets
from stack_helpers import synthesize
from voicetest_helpers import Simulate, ended_with_recording, wait_for_call

from voice_server.testing.provision import SimLine, supervisor_ticket
from voice_server.testing.simulator import SPEECH_RMS, CallerTurn, CallScript
from voice_server.testing.tones import tone, tone_share

pytestmark = pytest.mark.timeout(300)

TAKEOVER_CALLER = "+14155550163"  # this file's own callers: other tests' calls may be live in the same org
INTERIM_CALLER = "+14155550164"
HAND_BACK_CALLER = "+14155550165"
SUPERVISOR_HZ = 1000.0
MIC_RATE = 16000
FRAME_BYTES = 640  # 20 ms at 16 kHz, as the browser sends


def _loud_frames(report_pcm: bytearray) -> tuple[np.ndarray, list[int], list[int]]:
    """What the caller heard in 20 ms frames: the loud ones, and those of them that are the supervisor's tone."""
    heard = np.frombuffer(bytes(report_pcm), dtype=np.int16)
    frames = heard[: heard.size // 160 * 160].reshape(-1, 160)
    loud = [i for i, f in enumerate(frames) if np.sqrt(np.mean(f.astype(float) ** 2)) > SPEECH_RMS]
    return frames, loud, [i for i in loud if tone_share(frames[i], 8000, SUPERVISOR_HZ) > 0.6]


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(float)
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


async def _speak(ws: websockets.ClientConnection, seconds: float) -> None:
    pcm = tone(SUPERVISOR_HZ, seconds, MIC_RATE)
    for i in range(0, len(pcm), FRAME_BYTES):
        await ws.send(pcm[i: i + FRAME_BYTES])
        await asyncio.sleep(0.02)


async def test_supervisor_takes_the_call_over(simulate: Simulate, twilio_line: SimLine, http: httpx.AsyncClient,
                                              tts_url: str) -> None:
    audio = synthesize(tts_url, "Hello, I would like to speak to a person about my order please.")
    script = CallScript(turns=[CallerTurn(audio=audio, gap_s=1.0, label="question")], hangup_after_s=1.5,
                        max_duration_s=120)
    call = asyncio.create_task(simulate(twilio_line, script, from_number=TAKEOVER_CALLER))
    call_id, ticket = await supervisor_ticket(http, twilio_line, TAKEOVER_CALLER, "takeover")
    assert ticket["url"].endswith(f"/v1/takeover/{call_id}")

    # A listen-in ticket for the same call is no take-over ticket.
    _, listen = await supervisor_ticket(http, twilio_line, TAKEOVER_CALLER, "listen")
    async with websockets.connect(ticket["url"]) as ws:
        await ws.send(listen["ticket"])
        with pytest.raises(websockets.ConnectionClosed) as refused:
            await asyncio.wait_for(ws.recv(), 10)
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401

    caller_audio: list[tuple[float, bytes]] = []
    events: list[dict[str, str]] = []
    caller_spoke = asyncio.Event()
    async with websockets.connect(ticket["url"]) as ws:
        await ws.send(ticket["ticket"])
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ready["type"] == "ready" and ready["sample_rate"] == 8000

        async def receive() -> None:
            async for message in ws:
                if isinstance(message, bytes):
                    caller_audio.append((time.monotonic(), message))
                    if _rms(message) > SPEECH_RMS:
                        caller_spoke.set()
                else:
                    events.append(json.loads(message))

        receiver = asyncio.create_task(receive())
        await _speak(ws, 0.8)  # the caller hears the supervisor, then asks their question
        await asyncio.wait_for(caller_spoke.wait(), 60)  # the caller's voice reaches the supervisor
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the caller has been quiet for a second
            loud = [t for t, pcm in caller_audio if _rms(pcm) > SPEECH_RMS]
            if time.monotonic() - loud[-1] > 1.0:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # where the agent would answer, had it not stepped out
        await _speak(ws, 0.8)  # the supervisor answers; the caller hangs up after it
        report = await asyncio.wait_for(call, 90)
        await asyncio.wait_for(receiver, 15)
    assert {"type": "end", "reason": "call ended"} in events

    # What the caller heard: once the supervisor's tone came, nothing but the tone (the agent said nothing more).
    _, loud, supervisor = _loud_frames(report.heard_pcm)
    assert len(supervisor) >= 50, "the caller did not hear the supervisor (two 0.8 s tones)"
    agent_after = [i for i in loud if i > supervisor[0] and i not in supervisor]
    # Up to one frame at each edge of each of the two tones: with 40 ms chunks a tone's first or last chunk can be half
    # tone, half quiet, and fail the tone check. An agent reply would be hundreds of frames.
    assert len(agent_after) <= 4, f"the agent spoke after the take-over ({len(agent_after) * 20} ms of it)"

    detail = await wait_for_call(http, twilio_line, call_id, ended_with_recording)
    texts = [(t["speaker"], t["text"]) for t in detail["turns"]]
    assert ("system", "[supervisor] took over the call") in texts
    assert any(speaker == "caller" and text for speaker, text in texts), "the caller's turn was not transcribed"


async def test_handing_back_lets_the_agent_answer_again(simulate: Simulate, twilio_line: SimLine,
                                                        http: httpx.AsyncClient, tts_url: str) -> None:
    audio = synthesize(tts_url, "What are your opening hours on Saturday?")
    script = CallScript(turns=[CallerTurn(audio=audio, gap_s=0.5, label="hours")], hangup_after_s=1.0,
                        max_duration_s=120)
    call = asyncio.create_task(simulate(twilio_line, script, from_number=HAND_BACK_CALLER))
    call_id, ticket = await supervisor_ticket(http, twilio_line, HAND_BACK_CALLER, "takeover")
    async with websockets.connect(ticket["url"]) as ws:
        await ws.send(ticket["ticket"])
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
        await _speak(ws, 0.6)
        await ws.send(json.dumps({"type": "hangup"}))  # hand back: the caller asks the agent, who answers
    report = await asyncio.wait_for(call, 90)
    _, loud, supervisor = _loud_frames(report.heard_pcm)
    assert supervisor, "the caller did not hear the supervisor"
    agent_after = [i for i in loud if i > supervisor[-1] and i not in supervisor]
    assert len(agent_after) >= 25, "the agent did not answer after the call was handed back"
    detail = await wait_for_call(http, twilio_line, call_id, lambda c: bool(c.get("end_reason")))
    speakers = [(t["speaker"], t["text"]) for t in sorted(detail["turns"], key=lambda t: t["turn_index"])]
    back = speakers.index(("system", "[supervisor] handed the call back to the agent"))
    assert any(speaker == "agent" and text for speaker, text in speakers[back + 1:]), speakers


async def test_live_view_shows_interim_caller_words(simulate: Simulate, twilio_line: SimLine,
                                                    http: httpx.AsyncClient, tts_url: str) -> None:
    audio = synthesize(tts_url, "I would like to book an appointment for next Tuesday afternoon, around three "
                                "o'clock if that is possible.")
    script = CallScript(turns=[CallerTurn(audio=audio, gap_s=0.5, label="booking")], hangup_after_s=1.0,
                        max_duration_s=90)
    call = asyncio.create_task(simulate(twilio_line, script, from_number=INTERIM_CALLER))
    call_id, _ = await supervisor_ticket(http, twilio_line, INTERIM_CALLER, "listen")
    events: list[tuple[str, dict[str, object]]] = []
    url = f"{twilio_line.backend_url}/api/v1/live/calls/{call_id}/stream"
    async with http.stream("GET", url, headers=twilio_line.headers, timeout=httpx.Timeout(10, read=120)) as resp:
        assert resp.status_code == 200
        event = ""
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, json.loads(line.removeprefix("data: "))))
                if event == "end":
                    break
    await call
    interims = [str(data["text"]) for kind, data in events if kind == "interim"]
    turns = [data for kind, data in events if kind == "turn"]
    assert interims, f"no interim transcript reached the live view: {events}"
    assert all(data.get("speaker") == "caller" for kind, data in events if kind == "interim")
    assert any(t["speaker"] == "caller" for t in turns), events
    # Interims are not stored: the call's turns are exactly the final turns the live view showed.
    detail = await wait_for_call(http, twilio_line, call_id, lambda c: bool(c.get("end_reason")))
    assert sorted(t["turn_index"] for t in detail["turns"]) == sorted(int(str(t["turn_index"])) for t in turns)
