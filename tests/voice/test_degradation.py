"""Degradation chains and circuit breakers (pipelines/resilience.py, stt_chain.py, llm_chain.py, tts_chain.py).

Dead endpoints are really dead: a port nothing listens on, or a stand-in TCP socket that counts connections and
either drops them (dead) or forwards them to the real server (alive). The live endpoints are the project's real
speech servers; calls go through the real voice server, backend and telephony simulator (the carrier double).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pipecat.processors.aggregators.llm_context import LLMContext
from stack_helpers import AsrServer
from voicetest_helpers import (
    Simulate,
    VoiceServer,
    call_story,
    ended_with_recording,
    heard_text,
    wait_for_call,
    words_heard,
)

from core.agent_config import AgentConfig, EndpointOptions, LLMConfig, TransferTarget
from core.call_events import EndReason, ServiceDegraded
from core.service_auth import mint_service_token
from pipelines.degradation import DegradationPolicy
from pipelines.llm import OpenAIClientPool, create_llm_service
from pipelines.llm_chain import FallbackLLMService, llm_chain_args
from pipelines.resilience import BreakerRegistry, BreakerSettings, BreakerState, CircuitBreaker
from voice_server.answering import inbound_call_id
from voice_server.config import VoiceServerSettings
from voice_server.testing.fake_carrier import FakeCarrier
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallReport, CallScript
from voicectl.procs import free_port
from voicectl.speech_auth import speech_token

pytestmark = pytest.mark.timeout(240)

BILLING = {"name": "Billing", "phone_number": "+14155550142", "mode": "blind"}
# Words of the default canned reply that the test agent's greeting does not contain.
CANNED_WORDS = "sorry having trouble right now get someone"

LineMaker = Callable[..., Awaitable[SimLine]]  # the twilio_line_with fixture


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the breaker itself ----------------------------------------------------------------------------------------

def test_breaker_opens_after_k_failures_and_recovers_through_half_open() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("http://llm-a", BreakerSettings(failure_threshold=3, cooldown_s=30), clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure("refused")
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure("refused")
    assert breaker.state is BreakerState.OPEN and not breaker.allow()

    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow(), "half-open lets exactly one trial through"
    breaker.record_failure("still refused")
    assert breaker.state is BreakerState.OPEN, "a failed trial opens it for another cool-down"

    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    assert breaker.snapshot().opened == 2


def test_breaker_opens_on_failure_rate_without_k_in_a_row() -> None:
    breaker = CircuitBreaker("x", BreakerSettings(failure_threshold=100, failure_rate=0.5, window=4), FakeClock())
    for ok in (True, False, True, False):
        breaker.record_success() if ok else breaker.record_failure("503")
    assert breaker.state is BreakerState.OPEN


# -- LLM chain in-process: the breaker makes the next request skip a dead endpoint ------------------------------

class StandIn:
    """A TCP endpoint that counts connections; dead: closes each at once; alive: forwards it to `upstream`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.alive = False
        self.connections = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if not self.alive:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[StandIn]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        try:
            yield self
        finally:
            self._server.close()


class RecordingCall:
    """The voice server's side of a call (CallControl + CallEventSink), recording what the pipeline asks for."""

    def __init__(self) -> None:
        self.events: list[ServiceDegraded] = []
        self.ended: tuple[EndReason, str | None] | None = None

    async def end_call(self, reason: EndReason, goodbye: str | None, detail: str = "") -> None:
        self.ended = (reason, goodbye)

    async def transfer(self, target: TransferTarget, announcement: str, brief: str) -> str:
        return "transferring"

    async def hand_off_agent(self, agent_id: str) -> None:
        return None

    def turn(self, event: Any) -> None: ...

    def tool(self, event: Any) -> None: ...

    def degraded(self, event: ServiceDegraded) -> None:
        self.events.append(event)

    def flow_node(self, event: Any) -> None: ...

    def timeline_ms(self, monotonic_s: float | None = None) -> int:
        return 0


async def _complete(service: FallbackLLMService) -> str:
    context = LLMContext(messages=[{"role": "user", "content": "Say hello."}])
    stream = await service.get_chat_completions(context)
    text = ""
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    finally:
        await stream.close()
    return text


async def test_llm_breaker_skips_a_dead_endpoint_then_half_open_recovers(llm_url: str) -> None:
    clock = FakeClock()
    registry = BreakerRegistry(BreakerSettings(failure_threshold=2, cooldown_s=30), clock=clock)
    upstream = urlsplit(llm_url)
    model = VoiceServerSettings().llm_model
    pool = OpenAIClientPool(f"{llm_url}/v1", speech_token("tests"))  # the platform server: the fallback
    async with StandIn((upstream.hostname or "127.0.0.1", upstream.port or 80)).running() as primary:
        config = LLMConfig(max_tokens=8, temperature=0,
                           # The primary is "the organisation's own endpoint" (a proxy to the same server): it gets
                           # only its own key, never the platform's.
                           endpoint=EndpointOptions(base_url=f"{primary.url}/v1", timeout_s=20,
                                                    api_key_ref="primary_key"),
                           fallbacks=[EndpointOptions(base_url=f"{llm_url}/v1", timeout_s=60)])
        call = RecordingCall()
        policy = DegradationPolicy(AgentConfig(llm=config), "call-1", call, call)
        service = create_llm_service(config, pool, f"{llm_url}/v1", model, "Be brief.",
                                     **llm_chain_args(config, f"{llm_url}/v1", model, breakers=registry,
                                                      policy=policy, secrets={"primary_key": speech_token("tests")}))
        assert isinstance(service, FallbackLLMService)
        try:
            for _ in range(2):  # the primary fails twice: each reply comes from the fallback
                assert await _complete(service)
            breaker = registry.get(f"{primary.url}/v1")
            assert breaker.state is BreakerState.OPEN
            tried = primary.connections
            assert tried >= 2

            assert await _complete(service)
            assert primary.connections == tried, "an open breaker must skip the dead endpoint without connecting"
            assert service.served_by == [f"{llm_url}/v1"] * 3
            assert [e.to for e in call.events] == [f"{llm_url}/v1"] * 3
            assert "circuit open" in call.events[-1].reason

            primary.alive = True  # the endpoint comes back; after the cool-down one trial reaches it
            clock.now += 30
            assert breaker.state is BreakerState.HALF_OPEN
            assert await _complete(service)
            assert primary.connections == tried + 1
            assert breaker.state is BreakerState.CLOSED
            assert service.served_by[-1] == f"{primary.url}/v1"
        finally:
            await pool.close()


# -- whole calls through the voice server ------------------------------------------------------------------------

def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _steps(call: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [d for d in call.get("degradations", []) if d["service"] == service]


async def _canned_then_transferred(fake_carrier: FakeCarrier, asr_server: AsrServer, http: httpx.AsyncClient,
                                   line: SimLine, report: CallReport) -> dict[str, Any]:
    """The caller heard the canned words, the carrier got the transfer, and the call log says `transferred`."""
    fake = next(c for c in fake_carrier.calls.values() if c.sid == report.carrier_call_id)
    assert fake.transferred_to == BILLING["phone_number"], fake.redirect_twiml
    heard = await heard_text(asr_server, report)
    assert words_heard(heard, CANNED_WORDS) >= 3, heard
    call: dict[str, Any] = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id),
                                               ended_with_recording)
    assert call["end_reason"] == "transferred"
    return call


def _question(caller_audio: dict[str, bytes]) -> CallScript:
    return CallScript(turns=[CallerTurn(audio=caller_audio["hours"], label="question")], hangup_after_s=None,
                      max_duration_s=60)


async def test_stt_primary_dead_switches_to_the_real_asr(
        simulate: Simulate, twilio_line_with: LineMaker, voice_server: VoiceServer, http: httpx.AsyncClient,
        asr_server: AsrServer, caller_audio: dict[str, bytes]) -> None:
    """The primary Riva endpoint refuses connections: the call streams to the real ASR server instead."""
    dead = f"127.0.0.1:{free_port()}"
    line = await twilio_line_with(stt={"endpoint": {"base_url": dead, "timeout_s": 2},
                                "fallbacks": [{"base_url": asr_server.address}]})
    report = await simulate(line, _question(caller_audio))
    assert report.answers and report.answers[0].first_audio is not None, "the question got no spoken answer"

    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id), ended_with_recording)
    said = " ".join(t["text"] for t in call["turns"] if t["speaker"] == "caller")
    assert words_heard(said, "what are your opening hours on saturday") >= 3, said
    steps = _steps(call, "stt")
    assert steps and steps[0]["from_endpoint"] == dead and steps[0]["to"] == asr_server.address, steps
    assert call["end_reason"] == "silence_timeout"

    token = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "tests")
    status = (await http.get(f"{voice_server.url}/internal/v1/status",
                             headers={"Authorization": f"Bearer {token}"})).json()
    dead_breaker = next(b for b in status["breakers"] if b["endpoint"] == dead)
    assert dead_breaker["failures"] >= 1 and dead_breaker["successes"] == 0, dead_breaker


async def test_llm_primary_dead_fallback_answers(
        simulate: Simulate, twilio_line_with: LineMaker, http: httpx.AsyncClient, llm_url: str,
        caller_audio: dict[str, bytes]) -> None:
    dead = f"{_dead_url()}/v1"
    line = await twilio_line_with(llm={"max_tokens": 40, "temperature": 0.2,
                                       "endpoint": {"base_url": dead, "timeout_s": 5},
                                       "fallbacks": [{"base_url": f"{llm_url}/v1", "timeout_s": 60}]})
    report = await simulate(line, _question(caller_audio))
    assert report.answers and report.answers[0].first_audio is not None, "the fallback LLM's answer was not heard"

    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id), ended_with_recording)
    steps = _steps(call, "llm")
    assert steps and steps[0]["from_endpoint"] == dead and steps[0]["to"] == f"{llm_url}/v1", steps
    assert len([t for t in call["turns"] if t["speaker"] == "agent"]) >= 2


async def test_all_llms_dead_canned_reply_then_transfer(
        simulate: Simulate, twilio_line_with: LineMaker, http: httpx.AsyncClient, fake_carrier: FakeCarrier,
        asr_server: AsrServer, caller_audio: dict[str, bytes]) -> None:
    line = await twilio_line_with(transfer_targets=[BILLING],
                           llm={"max_tokens": 40, "endpoint": {"base_url": f"{_dead_url()}/v1", "timeout_s": 5},
                                "fallbacks": [{"base_url": f"{_dead_url()}/v1", "timeout_s": 5}]})
    report = await simulate(line, _question(caller_audio))

    call = await _canned_then_transferred(fake_carrier, asr_server, http, line, report)
    assert [s["to"] for s in _steps(call, "llm")][-1] == "transfer", (
        [s["to"] for s in call["degradations"]], [(t["speaker"], t["text"]) for t in call["turns"]])


async def test_tts_primary_dead_fallback_engine_heard(
        simulate: Simulate, twilio_line_with: LineMaker, http: httpx.AsyncClient, tts_url: str,
        asr_server: AsrServer) -> None:
    """Primary: an xtts endpoint that is down; fallback: piper on the real TTS server. The greeting is heard."""
    dead = _dead_url()
    line = await twilio_line_with(tts={"engine": "xtts", "endpoint": {"base_url": dead, "timeout_s": 3},
                                "fallbacks": [{"base_url": tts_url, "model": "piper"}]})
    report = await simulate(line, CallScript(turns=[], hangup_after_s=None, max_duration_s=40))
    assert report.first_agent_audio is not None, "nothing was heard"
    heard = await heard_text(asr_server, report)
    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id), ended_with_recording)
    assert words_heard(heard, "thank you for calling test clinic automated assistant") >= 3, (heard, call_story(call))
    steps = _steps(call, "tts")
    assert steps and steps[0]["from_endpoint"] == f"{dead} xtts" and steps[0]["to"] == f"{tts_url} piper", steps


async def test_all_tts_dead_prerecorded_clip_heard_then_transfer(
        simulate: Simulate, twilio_line_with: LineMaker, voice_server: VoiceServer, http: httpx.AsyncClient,
        fake_carrier: FakeCarrier, asr_server: AsrServer) -> None:
    """No TTS answers: the greeting cannot be said, so the agent plays the canned reply's pre-recorded clip and
    transfers the caller."""
    token = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "tests")
    for _ in range(120):  # the default prompts are recorded in the background at voice-server start
        status = (await http.get(f"{voice_server.url}/internal/v1/status",
                                 headers={"Authorization": f"Bearer {token}"})).json()
        if status["prompt_clips"] >= 4:
            break
        await asyncio.sleep(0.5)
    assert status["prompt_clips"] >= 4, status

    line = await twilio_line_with(transfer_targets=[BILLING],
                           tts={"endpoint": {"base_url": _dead_url(), "timeout_s": 3}})
    report = await simulate(line, CallScript(turns=[], hangup_after_s=None, max_duration_s=40))

    call = await _canned_then_transferred(fake_carrier, asr_server, http, line, report)
    assert {"prompt_clip", "transfer"} <= {s["to"] for s in _steps(call, "tts")}, call["degradations"]
