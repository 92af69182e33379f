"""The simulated caller of agent test runs ("Run tests"): one scripted scenario placed as a browser test call.

Production has no fake carrier (that is a test double), so the backend dials the voice server's browser-call
socket (/v1/browser, the protocol of frontend/README.md), as the editor's test-call page does: the call runs
through the same pipeline as a phone call (VAD, STT, LLM, TTS, flows, tools) and is recorded in the call log with
its transcript and recording. The caller's lines are synthesised by the TTS server in a voice unlike the agent's,
each spoken once the agent has finished its turn (or its collect_digits tool waits for keys: the socket's `keypad`
event); keypad lines are sent as the socket's `dtmf` messages (the pipeline gets them as Pipecat InputDTMFFrames,
as from a carrier). The expectations are checked against the call as recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection

from backend.config import BackendSettings
from backend.errors import ApiError
from backend.models.agents import ScenarioResultIn
from backend.models.calls import CallDetail
from backend.models.voices import VoiceSampleRequest
from backend.security.permissions import Principal
from backend.services.browser_calls import BROWSER_SAMPLE_RATE, BrowserCallService
from backend.services.call_history import CallHistoryService
from backend.services.persona_llm import PersonaLlm
from backend.services.voices import VoiceService
from core.agent_config import AgentConfig, TTSConfig
from core.agent_tests import PERSONA_NEEDS_LLM, Scenario, check

FRAME_BYTES = BROWSER_SAMPLE_RATE // 50 * 2  # 20 ms of PCM16, as the browser sends
AGENT_DONE_QUIET_S = 1.0  # the agent's turn is over once its audio has played out and this much silence followed
AGENT_REPLY_WAIT_S = 45.0  # an answer may take long on a loaded CPU-only machine (STT + LLM + TTS)
KEY_GAP_S = 0.1  # between two keypresses, as a person types
CALL_LIMIT_S = 240.0
RECORDED_WAIT_S = 60.0  # call events reach the call log asynchronously


@dataclass(frozen=True)
class Utterance:
    """One caller line: speech (PCM16 at 16 kHz), then keypresses."""

    pcm: bytes = b""
    keys: str = ""


# The caller's next line given what the agent has said so far; None: hang up.
NextLine = Callable[[list[str]], Awaitable[Utterance | None]]


@dataclass
class _Line:
    """What the caller hears: a model of the agent's playhead (audio arrives faster than it plays)."""

    playhead_end: float = 0.0
    first_audio_after: list[float] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    outgoing: bytearray = field(default_factory=bytearray)
    keys: list[str] = field(default_factory=list)  # pressed after the outgoing speech, one each KEY_GAP_S
    keypad_waiting: bool = False  # the agent's collect_digits waits for keys: its turn is over
    agent_said: list[str] = field(default_factory=list)  # the agent's final transcript lines, in order

    def heard(self, seconds: float) -> None:
        now = time.monotonic()
        self.first_audio_after.append(now)
        self.playhead_end = max(self.playhead_end, now) + seconds

    def agent_done_since(self, since: float) -> bool:
        now = time.monotonic()
        spoke = any(t >= since for t in self.first_audio_after)
        return spoke and now >= self.playhead_end + AGENT_DONE_QUIET_S


class SimulatedCaller:
    def __init__(self, settings: BackendSettings, browser_calls: BrowserCallService, voices: VoiceService,
                 calls: CallHistoryService, persona: PersonaLlm) -> None:
        self._settings = settings
        self._persona = persona
        self._browser_calls = browser_calls
        self._voices = voices
        self._calls = calls

    async def run(self, principal: Principal, agent_id: str, config: AgentConfig,
                  scenario: Scenario) -> ScenarioResultIn:
        if scenario.kind == "simulated":
            return await self._persona_call(principal, agent_id, config, scenario)
        voice = await self._caller_voice(principal.org_id, config.tts)
        lines = iter([Utterance(await self._speech(principal.org_id, voice, line.say) if line.say else b"", line.keys)
                      for line in scenario.caller if line.say or line.keys])

        async def scripted(_: list[str]) -> Utterance | None:
            return next(lines, None)

        call = await self._call(principal, agent_id, scripted)
        return _result(scenario, call, check(scenario.expect, call.model_dump(mode="json")))

    async def _persona_call(self, principal: Principal, agent_id: str, config: AgentConfig,
                            scenario: Scenario) -> ScenarioResultIn:
        """The persona LLM answers each agent turn until it hangs up (pipecat.evals' end_call) or runs out of
        turns; the recorded call is then judged on the rubric and checked against the expectations."""
        if not self._persona.configured:
            return ScenarioResultIn(name=scenario.name, status="skipped", failures=[PERSONA_NEEDS_LLM])
        voice = await self._caller_voice(principal.org_id, config.tts)
        conversation: list[tuple[str, str]] = []
        heard_so_far = 0

        async def persona(agent_said: list[str]) -> Utterance | None:
            nonlocal heard_so_far
            if sum(who == "caller" for who, _ in conversation) >= scenario.max_turns:
                return None
            conversation.append(("agent", " ".join(agent_said[heard_so_far:])))
            heard_so_far = len(agent_said)
            turn = await self._persona.reply(scenario, conversation)
            if turn.hung_up or not turn.say:
                return None  # a goodbye with the hang-up is not spoken: the call ends here
            conversation.append(("caller", turn.say))
            return Utterance(await self._speech(principal.org_id, voice, turn.say))

        call = await self._call(principal, agent_id, persona)
        failures = check(scenario.expect, call.model_dump(mode="json"))
        if scenario.success:
            verdict = await self._persona.judge(scenario, [(t.speaker, t.text) for t in call.turns
                                                           if t.speaker in ("agent", "caller")])
            if not verdict.passed:
                failures.append(f"judge: not achieved: {scenario.success} ({verdict.reason})")
        return _result(scenario, call, failures)

    async def _call(self, principal: Principal, agent_id: str, next_line: NextLine) -> CallDetail:
        session = await self._browser_calls.create(principal, agent_id, internal=True)
        await self._converse(session.ws_url, next_line)
        return await self._recorded(principal, session.call_id)

    async def _caller_voice(self, org_id: str, agent_tts: TTSConfig) -> VoiceSampleRequest:
        """AGENT_TESTS_CALLER_VOICE, else the first voice unlike the agent's; with only the agent's own voice
        installed, that voice slower, so the caller still sounds unlike the agent."""
        if self._settings.agent_tests_caller_voice:
            return VoiceSampleRequest(voice=self._settings.agent_tests_caller_voice, engine="piper")
        others = [v for v in await self._voices.list(org_id) if v.id != agent_tts.voice and not v.cloned]
        if others:
            return VoiceSampleRequest(voice=others[0].id, engine=others[0].engine)
        return VoiceSampleRequest(voice=agent_tts.voice, engine=agent_tts.engine,
                                  speed=0.8 if agent_tts.speed >= 1.0 else 1.2)

    async def _speech(self, org_id: str, voice: VoiceSampleRequest, text: str) -> bytes:
        pcm, rate = await self._voices.speak(org_id, voice.model_copy(update={"text": text}), BROWSER_SAMPLE_RATE)
        if rate != BROWSER_SAMPLE_RATE:
            raise ApiError(503, "tts_unavailable", f"the TTS server answered at {rate} Hz, not {BROWSER_SAMPLE_RATE}")
        return pcm

    async def _converse(self, ws_url: str, next_line: NextLine) -> None:
        line = _Line()
        async with websockets.connect(ws_url, max_size=2**20, open_timeout=30) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": BROWSER_SAMPLE_RATE,
                                      "encoding": "pcm_s16le", "channels": 1}))
            tasks = [asyncio.create_task(_receive(ws, line)), asyncio.create_task(_send(ws, line))]
            try:
                await asyncio.wait_for(_direct(line, next_line), CALL_LIMIT_S)
            except TimeoutError:
                pass  # checked against what was recorded, like any call that ran long
            finally:
                if not line.ended.is_set():
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(json.dumps({"type": "hangup"}))
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _recorded(self, principal: Principal, call_id: str) -> CallDetail:
        deadline = time.monotonic() + RECORDED_WAIT_S
        while True:
            call = await self._calls.detail(principal, call_id)
            if call.ended_at is not None or time.monotonic() > deadline:
                return call
            await asyncio.sleep(0.5)


def _result(scenario: Scenario, call: CallDetail, failures: list[str]) -> ScenarioResultIn:
    return ScenarioResultIn(name=scenario.name, status="failed" if failures else "passed", failures=failures[:50],
                            call_id=call.id, transcript=[f"{t.speaker}: {t.text}" for t in call.turns][:200])


async def _direct(line: _Line, next_line: NextLine) -> None:
    """The greeting, then the caller's next line each time the agent's turn is over, until there is none."""
    since = time.monotonic()
    while True:
        await _agent_turn(line, since)
        if line.ended.is_set():
            return
        utterance = await next_line(list(line.agent_said))
        if utterance is None:
            return
        line.keypad_waiting = False  # this line answers it; a new wait comes as a new `keypad` event
        await asyncio.sleep(0.5)
        line.outgoing.extend(utterance.pcm)
        line.keys.extend(utterance.keys)
        await _until(lambda: not (line.outgoing or line.keys) or line.ended.is_set(), CALL_LIMIT_S)
        since = time.monotonic()


async def _agent_turn(line: _Line, since: float) -> None:
    await _until(lambda: line.ended.is_set() or line.agent_done_since(since) or line.keypad_waiting,
                 AGENT_REPLY_WAIT_S)


async def _until(done: Callable[[], bool], limit_s: float) -> None:
    """Polls `done` (state the receiver and sender tasks change) every 50 ms, for at most `limit_s`."""
    for _ in range(int(limit_s / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)


async def _receive(ws: ClientConnection, line: _Line) -> None:
    try:
        async for message in ws:
            if isinstance(message, bytes):
                line.heard(len(message) / 2 / BROWSER_SAMPLE_RATE)
                continue
            event = json.loads(message)
            if event.get("type") == "transcript" and event.get("role") == "agent" and event.get("final"):
                line.agent_said.append(str(event.get("text", "")))
            elif event.get("type") == "keypad":
                line.keypad_waiting = event.get("waiting") is True
            elif event.get("type") == "clear":
                line.playhead_end = time.monotonic()
            elif event.get("type") == "end":
                break
    except websockets.ConnectionClosed:
        pass
    finally:
        line.ended.set()


async def _send(ws: ClientConnection, line: _Line) -> None:
    """20 ms frames in real time: the queued speech, else silence (a live microphone never stops); once the speech
    is out, the queued keypresses as `dtmf` messages between the frames."""
    silence = bytes(FRAME_BYTES)
    next_at = next_key_at = time.monotonic()
    while not line.ended.is_set():
        if line.keys and not line.outgoing and time.monotonic() >= next_key_at:
            await ws.send(json.dumps({"type": "dtmf", "digit": line.keys.pop(0)}))
            next_key_at = time.monotonic() + KEY_GAP_S
        frame = bytes(line.outgoing[:FRAME_BYTES])
        del line.outgoing[:FRAME_BYTES]
        await ws.send(frame.ljust(FRAME_BYTES, b"\0") if frame else silence)
        next_at += FRAME_BYTES / 2 / BROWSER_SAMPLE_RATE
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
