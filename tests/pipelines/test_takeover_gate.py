"""The agent's gate on its own (pipelines/takeover.py): while a supervisor has the call, nothing starts an answer or
a canned line, and everything else (the caller's transcription, context appends) passes; handing back reopens it.
The whole take-over on a real call: tests/voice/test_voice_takeover.py."""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from core.agent_config import SilenceConfig
from pipelines.silence import SilencePolicy
from pipelines.takeover import AgentGate


def _frames() -> list[Frame]:
    return [TranscriptionFrame("hello", "caller", "2030-01-01T00:00:00Z"), LLMContextFrame(LLMContext()),
            LLMRunFrame(), TTSSpeakFrame("Are you still there?"),
            LLMMessagesAppendFrame([{"role": "system", "content": "note"}], run_llm=False)]


async def test_the_gate_holds_back_the_agent_only_while_stepped_out() -> None:
    gate = AgentGate()
    await run_test(gate, frames_to_send=_frames(), expected_down_frames=[
        TranscriptionFrame, LLMContextFrame, LLMRunFrame, TTSSpeakFrame, LLMMessagesAppendFrame])
    gate = AgentGate()
    gate.stepped_out = True
    await run_test(gate, frames_to_send=_frames(), expected_down_frames=[TranscriptionFrame, LLMMessagesAppendFrame])


class _Control:
    def __init__(self) -> None:
        self.ended: list[str] = []

    async def end_call(self, reason: str, goodbye: str | None, detail: str = "") -> None:
        self.ended.append(reason)

    async def transfer(self, target: object, announcement: str, brief: str) -> str:
        return ""


async def test_silence_does_not_end_a_call_a_supervisor_has() -> None:
    control = _Control()
    gate = AgentGate()
    policy = SilencePolicy(SilenceConfig(reminder_after_s=1.0, max_reminders=0), control, gate)  # type: ignore[arg-type]
    gate.stepped_out = True
    await policy.on_idle(None)  # type: ignore[arg-type]  # the aggregator is not reached while stepped out
    assert control.ended == []
    gate.stepped_out = False
    await policy.on_idle(None)  # type: ignore[arg-type]
    assert control.ended == ["silence_timeout"]
