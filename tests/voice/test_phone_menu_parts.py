"""The phone-menu pieces around pipecat's IVR navigator (pipelines/ivr.py), without a call: the grammar the
embedded llama.cpp server gets, the key guard (keys the agent does not allow, or that are no keypad key, never
reach the carrier), and the navigator's `developer` prompts reaching the context as `system` messages."""

from __future__ import annotations

from llama_cpp import LlamaGrammar
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import LLMMessagesUpdateFrame, OutputDTMFUrgentFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import run_test

from pipelines.ivr import MenuKeys, SystemRole, menu_grammar


def test_the_grammar_admits_only_navigator_commands_with_allowed_keys() -> None:
    grammar = menu_grammar("2#")
    LlamaGrammar.from_string(grammar, verbose=False)  # valid GBNF
    assert '"<dtmf>" key "</dtmf>"' in grammar and 'key ::= "2" | "#"' in grammar
    assert '"<mode>conversation</mode>"' in grammar and '"wait"' in grammar


async def test_keys_outside_the_allowed_ones_are_dropped() -> None:
    keys = MenuKeys("2")
    down, _ = await run_test(keys, frames_to_send=[OutputDTMFUrgentFrame(button=KeypadEntry.ONE),
                                                   OutputDTMFUrgentFrame(button=KeypadEntry.TWO)],
                             expected_down_frames=[OutputDTMFUrgentFrame])
    assert [f.button for f in down] == [KeypadEntry.TWO]
    assert keys.pressed == "2" and keys.refused == "1"


def test_a_keypad_entry_that_is_no_key_is_refused_before_any_frame() -> None:
    """The extension turns `<dtmf>x</dtmf>` into KeypadEntry("x"), which raises: it logs and sends nothing."""
    try:
        KeypadEntry("x")
    except ValueError:
        return
    raise AssertionError("KeypadEntry accepted 'x'")


async def test_developer_prompts_reach_the_context_as_system_messages() -> None:
    frame = LLMMessagesUpdateFrame(messages=[{"role": "developer", "content": "Navigate the menu."},
                                             {"role": "user", "content": "Press 1 for sales."}])
    _, up = await run_test(SystemRole(), frames_to_send=[frame], frames_to_send_direction=FrameDirection.UPSTREAM,
                           expected_up_frames=[LLMMessagesUpdateFrame])
    assert [m["role"] for m in up[0].messages] == ["system", "user"]  # type: ignore[index]
