"""Phone-menu navigation: the keys an agent may press are validated (a clear 422-style error).

The end-to-end call through a simulated menu (pipecat's IVR navigator pressing a key through Vobiz's DTMF API) is not
in the suite: with the embedded SmolLM2-135M it was never seen to pass here (it presses the wrong key, or repeats the
right one without the hand-over), and a test that is expected to fail proves nothing. It needs a stronger LLM;
docs/flows-and-phone.md says so. The navigator's parts are tested in tests/voice/test_phone_menu_parts.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.agent_config import AgentConfig


def test_keys_the_agent_may_press_are_validated() -> None:
    with pytest.raises(ValidationError, match="phone_menu.keys"):
        AgentConfig.model_validate({"phone_menu": {"goal": "billing", "keys": "12A"}})
