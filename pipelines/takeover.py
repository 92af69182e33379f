"""The agent steps out while a supervisor has taken the call over (voice_server/media/takeover.py).

The gate sits between the caller's side of the pipeline and the LLM: the caller's turns are still transcribed and
recorded (the user aggregator is before it), but nothing asks the LLM for an answer and nothing the caller's side
asks the agent to say (silence reminders) reaches the TTS. The transport drops whatever agent audio was already on
its way; the gate only keeps new answers from starting. Handing back opens it again: the agent answers the
caller's next turn, with everything said meanwhile in its context.
"""

from __future__ import annotations

from pipecat.frames.frames import Frame, LLMContextFrame, LLMRunFrame, TTSSpeakFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

# What starts the agent talking: an answer (context / run) or a canned line.
_AGENT_STARTERS = (LLMContextFrame, LLMRunFrame, TTSSpeakFrame)


class AgentGate(FrameProcessor):
    def __init__(self) -> None:
        super().__init__(name="agent-gate")
        self.stepped_out = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self.stepped_out and direction == FrameDirection.DOWNSTREAM and isinstance(frame, _AGENT_STARTERS):
            return
        await self.push_frame(frame, direction)
