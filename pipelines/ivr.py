"""Phone-menu navigation for outbound calls, on `pipecat.extensions.ivr`.

Why: an outbound call may reach an automated menu ("for billing, press 2") before a person. Pipecat's IVRNavigator
wraps the call's LLM: it classifies what it hears (a menu or a person); in menu mode the LLM answers with
`<dtmf>N</dtmf>` commands that the navigator turns into OutputDTMFUrgentFrames, which the voice server's transport
sends through the carrier exactly like send_digits (Vobiz: REST DTMF API; Twilio: in-band tones). When the
navigator reports the goal reached (`<ivr>completed</ivr>`) or a person (`<mode>conversation</mode>`), the menu is
over: the context is cleared (the agent's own system prompt applies again) and the agent says its greeting.

With the embedded SmolLM2-135M free text is rarely a valid command, so `constrain_output` sends a llama.cpp
grammar that admits only the navigator's commands, and only the keys the agent allows; the verbal answers the
extension also knows ("Billing.") are then out of reach. Which key the model picks is still its own choice
(SmolLM2-135M does not read menus: docs/flows-and-phone.md; tests/voice/test_phone_menu_call.py fixes the key). Keys outside `keys` are dropped here whatever the
model wrote, and the extension itself drops a `<dtmf>` that is not a keypad key.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pipecat.extensions.ivr.ivr_navigator import IVRNavigator, IVRStatus
from pipecat.frames.frames import Frame, LLMMessagesUpdateFrame, OutputDTMFUrgentFrame, TTSSpeakFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.base_llm import BaseOpenAILLMService, OpenAILLMSettings

from core.agent_config import PhoneMenuConfig
from core.call_events import ToolInvoked
from pipelines.tools import ToolContext

log = logging.getLogger(__name__)


def menu_grammar(keys: str) -> str:
    """GBNF: one navigator command; `<dtmf>` only with an allowed key."""
    key = " | ".join(f'"{k}"' for k in dict.fromkeys(keys))
    return ('root ::= "<mode>ivr</mode>" | "<mode>conversation</mode>" | "<dtmf>" key "</dtmf>" | '
            '"<ivr>" ("completed" | "wait" | "stuck") "</ivr>"\n'
            f"key ::= {key}\n")


class SystemRole(FrameProcessor):
    """Before the navigator: its prompts come as `developer` messages (OpenAI's newer name for `system`), which
    the embedded llama.cpp server refuses (422); they reach the context as `system` messages."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMMessagesUpdateFrame):
            frame.messages = [{**m, "role": "system"} if isinstance(m, dict) and m.get("role") == "developer"  # type: ignore[misc]
                              else m for m in frame.messages]
        await self.push_frame(frame, direction)


class MenuKeys(FrameProcessor):
    """After the navigator: passes the keys the agent allows (and remembers them), drops any other."""

    def __init__(self, allowed: str) -> None:
        super().__init__()
        self.allowed = allowed
        self.pressed = ""
        self.refused = ""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputDTMFUrgentFrame):
            key = frame.button.value if frame.button is not None else ""
            if key not in self.allowed:
                self.refused += key
                log.warning("phone menu: key %r is not one the agent may press (%s); dropped", key, self.allowed)
                return
            self.pressed += key
        await self.push_frame(frame, direction)


class PhoneMenu:
    """The navigator (in the LLM's place in the pipeline: `processors`), its key guard, and the hand-over to the
    conversation."""

    def __init__(self, config: PhoneMenuConfig, llm: BaseOpenAILLMService, ctx: ToolContext, greeting: str,
                 timeout_s: float) -> None:
        self.navigator = IVRNavigator(llm=llm, ivr_prompt=config.goal)  # type: ignore[arg-type]
        self.roles = SystemRole()
        self.keys = MenuKeys(config.keys)
        self.outcome: str | None = None  # completed | person | stuck
        self._settings: OpenAILLMSettings = llm._settings  # type: ignore[assignment]
        self._ctx = ctx
        self._greeting = greeting
        self._started = time.perf_counter()
        # The navigator's prompts are ~1,500 tokens: each request gets the agent's endpoint timeout itself (the
        # process-wide client may have been made with another agent's).
        self._settings.extra["timeout"] = timeout_s
        if config.constrain_output:
            self._settings.extra["extra_body"] = {"grammar": menu_grammar(config.keys)}

        @self.navigator.event_handler("on_conversation_detected")
        async def _person(processor: FrameProcessor, _history: list[Any]) -> None:
            await self._hand_over(processor, "person")

        @self.navigator.event_handler("on_ivr_status_changed")
        async def _status(processor: FrameProcessor, status: IVRStatus) -> None:
            if status is IVRStatus.COMPLETED:
                await self._hand_over(processor, "completed")
            elif status is IVRStatus.STUCK:
                self._report("stuck", ok=False)

    @property
    def processors(self) -> list[FrameProcessor]:
        return [self.roles, self.navigator, self.keys]

    async def _hand_over(self, processor: FrameProcessor, outcome: str) -> None:
        if self.outcome in ("completed", "person"):
            return
        self.outcome = outcome
        self._settings.extra.pop("extra_body", None)  # the conversation is free text again
        self._settings.extra.pop("timeout", None)
        self._report(outcome, ok=True)
        # The agent's own system prompt (the LLM's system instruction) applies to an empty history again.
        await processor.push_frame(LLMMessagesUpdateFrame(messages=[], run_llm=False), FrameDirection.UPSTREAM)
        if self._greeting:
            await processor.push_frame(TTSSpeakFrame(self._greeting, append_to_context=True))

    def _report(self, outcome: str, *, ok: bool) -> None:
        self.outcome = self.outcome or outcome
        detail = f"{outcome}; pressed {self.keys.pressed or 'nothing'}"
        if self.keys.refused:
            detail += f"; refused {self.keys.refused}"
        self._ctx.events.tool(ToolInvoked(call_id=self._ctx.call_id, name="phone_menu", ok=ok,
                                          duration_ms=round((time.perf_counter() - self._started) * 1000, 1),
                                          detail=detail[:500]))
