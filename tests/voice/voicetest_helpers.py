"""Shared pieces of the voice tests (a unique module name: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import io
import re
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import riva.client
from stack_helpers import AsrServer

from voice_server.testing.fake_carrier import FakeCall, FakeCarrier, ScriptedCallee
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallReport
from voicectl.procs import ManagedProcess
from voicectl.speech_auth import riva_metadata

# The `simulate` fixture: place a simulated call on a line, get its report.
Simulate = Callable[..., Awaitable[CallReport]]


@dataclass(frozen=True)
class VoiceServer:
    url: str
    spool_dir: Path
    proc: ManagedProcess


# Short answers keep the 2-core machine responsive; the agent hangs up after 2 s of silence (no reminder), which
# exercises the same goodbye -> wait for playback -> REST hang-up path as the end_call tool.
TEST_AGENT: dict[str, Any] = {
    "system_prompt": "You are the receptionist of Test Clinic. Answer in one short sentence.",
    "greeting": "Hello and thank you for calling Test Clinic. This is the automated assistant. "
                "How can I help you today?",
    "goodbye": "Thank you for calling. Goodbye!",
    "llm": {"max_tokens": 40, "temperature": 0.2},
    "silence": {"reminder_after_s": 2.0, "max_reminders": 0, "hangup_text": "I have not heard from you. Goodbye."},
}

PHRASES = {
    "hours": "Sorry, what are your opening hours on Saturday?",
    "book": "Can I book an appointment for next Tuesday?",
    "hello": "Hello? Hello?",
    "parking": "Is there parking near the building?",
    "yes": "Yes.",
}


async def wait_for_call(http: httpx.AsyncClient, line: SimLine, call_id: str,
                        ready: Callable[[dict[str, Any]], bool], timeout_s: float = 40.0) -> dict[str, Any]:
    """The backend applies call events asynchronously: poll the call until `ready` holds."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = await line.call_detail(http, call_id)
        if last is not None and ready(last):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"call {call_id} never reached the expected state; last seen: {last}")


async def outbound_call_record(http: httpx.AsyncClient, line: SimLine, callee: str, carrier: str,
                               variables: dict[str, str] | None = None) -> str:
    """What the dialer does before it dials: the backend records the outbound call; returns its call id."""
    import os

    from core.service_auth import mint_service_token

    token = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "dialer")
    resp = await http.post(f"{line.backend_url}/internal/v1/calls", headers={"Authorization": f"Bearer {token}"},
                           json={"org_id": line.org_id, "agent_id": line.agent_id, "from_number": line.number,
                                 "to_number": callee, "carrier": carrier, "variables": variables or {}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["call_id"])


async def dial_twilio_outbound(http: httpx.AsyncClient, line: SimLine, fake: FakeCarrier, voice_server: VoiceServer,
                               number: str, callee: ScriptedCallee, amd: bool = False,
                               variables: dict[str, str] | None = None) -> tuple[str, FakeCall]:
    """An outbound Twilio call to a scripted callee of the fake carrier, placed as the dialer does (with the
    carrier's AMD when `amd`); returns at once with the call id and the fake carrier's view of the call."""
    from core.call_events import CarrierCredentials
    from telephony.base import OutboundCallRequest
    from telephony.twilio import TwilioRestClient

    call_id = await outbound_call_record(http, line, number, "twilio", variables)
    fake.callees[number] = callee
    client = TwilioRestClient(CarrierCredentials(carrier="twilio", account_id=line.account.account_id,
                                                 auth_token=line.account.auth_token, api_base_url=fake.base_url))
    try:
        placed = await client.create_call(OutboundCallRequest(
            to_number=number, from_number=line.number, answer_url=f"{voice_server.url}/twilio/voice?call_id={call_id}",
            status_callback_url=f"{voice_server.url}/twilio/status?call_id={call_id}",
            machine_detection="enable" if amd else "off",
            machine_detection_url=f"{voice_server.url}/twilio/amd?call_id={call_id}" if amd else None))
    finally:
        await client.close()
    return call_id, fake.calls[placed.carrier_call_id]


async def until_completed(fake_call: FakeCall, limit_s: float = 60.0) -> None:
    """Until the fake carrier has the call's report and its completed status (or the limit passes)."""
    for _ in range(int(limit_s * 10)):
        if fake_call.report is not None and fake_call.status == "completed":
            return
        await asyncio.sleep(0.1)


async def place_twilio_outbound(http: httpx.AsyncClient, line: SimLine, fake: FakeCarrier, voice_server: VoiceServer,
                                number: str, callee: ScriptedCallee, amd: bool = False) -> dict[str, Any]:
    """`dial_twilio_outbound`, then the backend's call record once the call has ended with its recording."""
    call_id, fake_call = await dial_twilio_outbound(http, line, fake, voice_server, number, callee, amd)
    await until_completed(fake_call, 50.0)
    return await wait_for_call(http, line, call_id, ended_with_recording)


def ended_with_recording(call: dict[str, Any]) -> bool:
    return bool(call.get("end_reason")) and call.get("recording") is not None


def call_story(call: dict[str, Any]) -> str:
    """A call record in a few lines for an assertion message: what was said, what degraded and why, the tools and
    how it ended, so a failure on CI tells a slow or failing server from a wrong test."""
    turns = [(t["speaker"], t["text"]) for t in call.get("turns", [])]
    steps = [(d["service"], d.get("from_endpoint"), d.get("to"), d.get("reason")) for d in call.get("degradations", [])]
    tools = [(t["name"], t.get("ok"), t.get("status_code"), t.get("detail")) for t in call.get("tools", [])]
    return (f"turns={turns} degradations={steps} tools={tools} "
            f"end={call.get('end_reason')} ({call.get('end_detail')})")


def read_stereo_wav(data: bytes) -> tuple[int, np.ndarray, np.ndarray]:
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 2, "the recording must be stereo"
        assert wav.getsampwidth() == 2
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return rate, frames[0::2], frames[1::2]


def active_seconds(channel: np.ndarray, rate: int, threshold: float = 300.0) -> float:
    """Seconds of 20 ms blocks louder than `threshold` RMS."""
    block = int(rate * 0.02)
    n = channel.size // block
    if n == 0:
        return 0.0
    blocks = channel[: n * block].astype(np.float32).reshape(n, block)
    rms = np.sqrt(np.mean(blocks ** 2, axis=1))
    return float(np.sum(rms > threshold) * 0.02)


def words_heard(transcript: str, reference: str) -> int:
    """How many of the reference's words the transcript contains (Whisper tiny over 8 kHz μ-law is not perfect)."""
    said = set(re.sub(r"[^a-z0-9' ]", " ", transcript.lower()).split())
    return sum(1 for w in set(re.sub(r"[^a-z0-9' ]", " ", reference.lower()).split()) if w in said)


def _transcribe(asr: AsrServer, pcm: bytes, rate: int) -> str:
    service = riva.client.ASRService(riva.client.Auth(uri=asr.address, metadata_args=riva_metadata("tests")))
    silence = b"\x00" * rate
    response = service.offline_recognize(
        silence + pcm + silence,
        riva.client.RecognitionConfig(encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=rate))
    return " ".join(r.alternatives[0].transcript for r in response.results)


async def heard_text(asr: AsrServer, report: CallReport) -> str:
    """What the caller heard during the call, as the real ASR server transcribes it."""
    return await asyncio.to_thread(_transcribe, asr, bytes(report.heard_pcm), report.heard_rate)

