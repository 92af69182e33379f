"""Agent test suites (issue 19, what Vapi calls simulations): scenarios written as YAML, each a scripted caller and
the events expected of the call, checked against the call the platform recorded.

The typed shape lives in core so the backend, the CLI (`voicectl test-agent`) and the test runner
(voice_server/testing/agent_tests.py) read one format. An expectation of a kind not listed here is refused when
the suite loads, naming the scenario and the kind, never skipped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToolCalled(_Strict):
    kind: Literal["tool_called"]
    name: str = Field(min_length=1, max_length=64)
    detail_contains: str = Field(default="", max_length=200, description="Text in the tool event's detail.")


class Transferred(_Strict):
    kind: Literal["transferred"]
    target: str = Field(default="", max_length=64, description="A transfer target's name; empty: any.")


class CallEnded(_Strict):
    kind: Literal["call_ended"]
    reason: str = Field(default="", max_length=40, description="The call's end reason; empty: any.")


class ReplyContains(_Strict):
    kind: Literal["reply_contains"]
    words: list[str] = Field(min_length=1, max_length=20, description="All in one agent reply (any case).")


class Extracted(_Strict):
    kind: Literal["extracted"]
    variable: str = Field(min_length=1, max_length=64, description="A variable the agent's flow collected.")
    equals: str = Field(max_length=200)


class FlowPath(_Strict):
    kind: Literal["flow_path"]
    nodes: list[str] = Field(min_length=1, max_length=50)


Expectation = Annotated[ToolCalled | Transferred | CallEnded | ReplyContains | Extracted | FlowPath,
                        Field(discriminator="kind")]


class CallerLine(_Strict):
    say: str = Field(default="", max_length=500)
    keys: str = Field(default="", pattern=r"^[0-9*#]{0,32}$", description="Keypad presses instead of speech.")


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["scripted", "simulated"] = "scripted"
    caller: list[CallerLine] = Field(default_factory=list, max_length=20)
    persona: str = Field(default="", max_length=2000, description="Simulated: who the caller is.")
    goal: str = Field(default="", max_length=1000, description="Simulated: what the caller wants (default: persona).")
    success: str = Field(default="", max_length=2000, description=(
        "Simulated: the judge's rubric, what counts as the agent having done its job (pipecat.evals' `success`)."))
    max_turns: int = Field(default=6, ge=1, le=20, description="Simulated: the persona's turns at most.")
    expect: list[Expectation] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _simulated_has_a_persona(self) -> Scenario:
        if self.kind == "simulated" and not self.persona:
            raise ValueError("a simulated scenario needs a persona")
        return self


PERSONA_NEEDS_LLM = ("skipped: simulated personas need a stronger LLM than the embedded SmolLM2-135M to play the "
                     "caller and judge the call; set AGENT_TESTS_LLM_BASE_URL and AGENT_TESTS_LLM_MODEL on the "
                     "backend (docs/flows-and-phone.md)")


class AgentTestSuite(_Strict):
    agent: dict[str, Any] = Field(default_factory=dict, description="The agent config under test (AgentConfig).")
    scenarios: list[Scenario] = Field(min_length=1, max_length=50)


def load_suite(text: str) -> AgentTestSuite:
    """Parses a suite's YAML; raises ValueError with a readable message (which scenario, which field)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    try:
        return AgentTestSuite.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            if error["type"] == "union_tag_invalid":
                kinds = ", ".join(_KINDS)
                problems.append(f"{where}: unknown expectation {error['input'].get('kind')!r}; use one of {kinds}")
            else:
                problems.append(f"{where}: {error['msg']}")
        raise ValueError("; ".join(problems)) from None


_KINDS = ("call_ended", "extracted", "flow_path", "reply_contains", "tool_called", "transferred")


def check(expect: list[Expectation], call: dict[str, Any]) -> list[str]:
    """What the recorded call (the backend's call detail) failed of the expectations; empty: the scenario passed."""
    failures = []
    agent_turns = [t["text"].lower() for t in call.get("turns", []) if t.get("speaker") == "agent"]
    for e in expect:
        if isinstance(e, ToolCalled):
            ok = any(t["name"] == e.name and e.detail_contains in t.get("detail", "") for t in call.get("tools", []))
        elif isinstance(e, Transferred):
            ok = call.get("end_reason") == "transferred" and e.target in (call.get("end_detail") or "")
        elif isinstance(e, CallEnded):
            ok = call.get("ended_at") is not None and (not e.reason or call.get("end_reason") == e.reason)
        elif isinstance(e, ReplyContains):
            ok = any(all(w.lower() in turn for w in e.words) for turn in agent_turns)
        elif isinstance(e, Extracted):
            ok = str((call.get("flow_variables") or {}).get(e.variable, "")).lower() == e.equals.lower()
        else:
            ok = [s["node"] for s in call.get("flow_path", [])] == e.nodes
        if not ok:
            failures.append(f"expected {e.model_dump(exclude_defaults=True)}")
    return failures
