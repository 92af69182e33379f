"""Silence policy: after `reminder_after_s` of caller silence the agent asks "Are you still there?", up to
`max_reminders` times, then says the hang-up line and ends the call (end reason silence_timeout)."""

from __future__ import annotations

import time
from typing import Any

from pipecat.frames.frames import TTSSpeakFrame
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator

from core.agent_config import SilenceConfig
from pipelines.control import CallControl
from pipelines.takeover import AgentGate


class SilencePolicy:
    def __init__(self, config: SilenceConfig, control: CallControl, gate: AgentGate | None = None) -> None:
        self._config = config
        self._control = control
        self._gate = gate
        self.reminders = 0
        self._last_activity = 0.0

    def note_activity(self) -> None:
        """Caller activity the aggregator does not see as speech (DTMF)."""
        self._last_activity = time.monotonic()
        self.reminders = 0

    def attach(self, user: LLMUserAggregator) -> None:
        @user.event_handler("on_user_turn_idle")
        async def _idle(aggregator: Any) -> None:
            await self.on_idle(aggregator)

        @user.event_handler("on_user_turn_started")
        async def _spoke(_aggregator: Any, _strategy: Any) -> None:
            self.reminders = 0

    async def on_idle(self, aggregator: LLMUserAggregator) -> None:
        if self._gate is not None and self._gate.stepped_out:
            return  # a supervisor has the call: the silence is theirs to handle
        if time.monotonic() - self._last_activity < self._config.reminder_after_s:
            return  # the caller pressed keys meanwhile; the agent's answer restarts the timer
        if self.reminders < self._config.max_reminders:
            self.reminders += 1
            await aggregator.push_frame(TTSSpeakFrame(self._config.reminder_text, append_to_context=True))
            return
        await self._control.end_call("silence_timeout", goodbye=self._config.hangup_text)
