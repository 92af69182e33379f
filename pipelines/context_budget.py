"""Keeps a long call's LLM request inside the agent's token budget (`llm.context_token_budget`).

The call's context keeps every turn (the transcript needs them); only the request sent to the model is trimmed:
the system prompt always stays, then the newest messages that fit. Older exchanges are dropped whole (an assistant
tool call with its tool results, so the request stays valid) and replaced by one note that keeps what the tools
returned, in short, so facts a tool looked up survive. Tokens are estimated at 4 characters each (a real tokenizer
per model would be exact; the estimate errs on the long side for English)."""

from __future__ import annotations

import json
from typing import Any

CHARS_PER_TOKEN = 4
NOTE_RESULT_CHARS = 160


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(m, default=str)) for m in messages) // CHARS_PER_TOKEN + 1


def _exchanges(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Messages grouped so that an assistant message with tool calls stays with the tool results after it."""
    groups: list[list[dict[str, Any]]] = []
    for message in messages:
        if message.get("role") == "tool" and groups:
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def _note(dropped: list[list[dict[str, Any]]]) -> dict[str, Any]:
    results = [str(m.get("content", ""))[:NOTE_RESULT_CHARS] for group in dropped for m in group
               if m.get("role") == "tool"]
    turns = sum(len(g) for g in dropped)
    text = f"[{turns} earlier messages of this call are omitted.]"
    if results:
        text += " Tool results from earlier in the call: " + " | ".join(results[-5:])
    return {"role": "system", "content": text}


def within_budget(params: dict[str, Any], budget: int | None) -> dict[str, Any]:
    """`params` with its messages trimmed to `budget` estimated tokens (None: unchanged)."""
    messages: list[dict[str, Any]] = list(params.get("messages") or [])
    if budget is None or estimate_tokens(messages) <= budget or not messages:
        return params
    head = [messages[0]] if messages[0].get("role") in ("system", "developer") else []
    groups = _exchanges(messages[len(head):])
    kept: list[list[dict[str, Any]]] = []
    for group in reversed(groups):
        candidate = [*head, _note(groups[:len(groups) - len(kept) - 1]), *[m for g in [group, *kept] for m in g]]
        if kept and estimate_tokens(candidate) > budget:
            break
        kept.insert(0, group)
    dropped = groups[:len(groups) - len(kept)]
    trimmed = [*head, *([_note(dropped)] if dropped else []), *[m for g in kept for m in g]]
    return {**params, "messages": trimmed}
