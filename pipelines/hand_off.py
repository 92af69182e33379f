"""A flow's hand-off to another agent of the same organisation, executed in the call (issue 19).

The hand-off is a global function of the flow (core/agent_flow.py `HandOff`). When the LLM calls it, the target
agent's current version is looked up through the call's control (the voice server asks the backend; another
organisation's or a deleted agent reads as None). Found: the call switches to a node made of the target's prompt
(as the LLM's system instruction), its tools and tool choice and its greeting, with a summary of the conversation so
far as the only context; recorded as a tool event and a `call.flow_node` step named `agent:<name>`. Not found: the
function answers that the agent is unavailable, tool choice goes back to auto (a forced hand-off would otherwise
call it again and again) and the call carries on where it was.

The summary is the recent turns as text, not an LLM-written one: the embedded SmolLM2-135M cannot summarise
reliably. From the hand-off on, the call speaks with the target's voice (its TTS voice, engine, speed and endpoint
chain: a `TTSVoiceFrame` queued before its greeting, pipelines/tts_chain.py; the TTS service itself is built once
per call) and offers the target's end_call / transfer_call (its goodbye, transfer targets and announcements) in
place of the first agent's. What the call was built with stays the first agent's: the STT, the LLM endpoint and
its settings, the silence and interruption policies, voicemail detection.
"""

from __future__ import annotations

from typing import Any

MAX_SUMMARY_TURNS = 10
MAX_TURN_CHARS = 200
UNAVAILABLE = "That agent is unavailable right now; carry on helping the caller yourself."


def node_name(agent_name: str) -> str:
    """The flow step a hand-off adds to the call's path."""
    return f"agent:{agent_name}"[:64]


def conversation_summary(messages: list[Any], variables: dict[str, str]) -> str:
    """The last turns of the call (caller and agent text only) and the variables collected, for the next agent."""
    lines = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if isinstance(content, str) and content.strip():
            speaker = "Caller" if message["role"] == "user" else "Agent"
            lines.append(f"{speaker}: {content.strip()[:MAX_TURN_CHARS]}")
    lines = lines[-MAX_SUMMARY_TURNS:] or ["(nothing said yet)"]
    collected = ", ".join(f"{k}={v}" for k, v in variables.items() if v)
    return "\n".join(lines) + (f"\nCollected: {collected}" if collected else "")


def task_message(summary: str) -> str:
    return f"You are taking over this phone call from another agent. The conversation so far:\n{summary}"
