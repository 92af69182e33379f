"""Agents and their versions. The configuration itself is core.agent_config.AgentConfig."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.models.common import ApiModel
from core.agent_config import AgentConfig

_EXAMPLE_CONFIG = {
    "system_prompt": "You are Riley, the receptionist of {{business}}. Be brief and friendly.",
    "greeting": "Hi, this is Riley from {{business}}. How can I help?",
    "variables": {"business": "Acme Dental"},
    "llm": {"temperature": 0.5, "max_tokens": 150},
    "tts": {"engine": "piper", "voice": "en_US-joe-medium"},
}


class AgentCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100, examples=["Receptionist"])
    description: str = Field(default="", max_length=500)
    config: AgentConfig = Field(default_factory=AgentConfig, examples=[_EXAMPLE_CONFIG])


class AgentUpdate(ApiModel):
    """Any subset. A new `config` creates a new version; calls record the version they used."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    config: AgentConfig | None = None
    note: str | None = Field(default=None, max_length=200, description="What changed, shown in the version history.")
    base_version: int | None = Field(
        default=None, ge=1, description="The version this edit started from; a newer one gives 409 instead of overwriting."
    )


class AgentSummary(BaseModel):
    id: str
    name: str
    description: str = ""
    version: int
    created_at: datetime
    updated_at: datetime


class AgentOut(AgentSummary):
    config: AgentConfig


class AgentVersionOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str | None = None
    note: str | None = None
    config: AgentConfig


class ScenarioResultIn(ApiModel):
    """One scenario of an agent test suite (core/agent_tests.py) as `voicectl test-agent` ran it."""

    name: str = Field(min_length=1, max_length=120)
    status: Literal["passed", "failed", "skipped"]
    failures: list[str] = Field(default_factory=list, max_length=50)
    call_id: str | None = Field(default=None, max_length=64)
    transcript: list[str] = Field(default_factory=list, max_length=200)


class AgentTestRunIn(ApiModel):
    version: int = Field(ge=1, description="The agent version the suite ran against.")
    suite: str = Field(default="", max_length=200, description="Where the suite came from, e.g. its file.")
    results: list[ScenarioResultIn] = Field(min_length=1, max_length=50)


class AgentTestRunStart(ApiModel):
    """Run tests from the editor: these scenarios, or the agent's saved `test_scenarios` when empty."""

    suite_yaml: str = Field(default="", max_length=100_000, description=(
        "YAML (or JSON) with `scenarios:`, the format of data/agent-tests/*.yaml; an `agent:` section is ignored "
        "(the run tests this agent's current version). Empty: the agent's saved test_scenarios."))
    save_with_agent: bool = Field(default=False, description=(
        "Also save these scenarios as the agent's test_scenarios (a new version), then run them against it."))


RunStatus = Literal["queued", "running", "passed", "failed"]


class AgentTestRunOut(BaseModel):
    id: str
    version: int
    suite: str
    status: RunStatus = Field(description="queued / running, then failed when any scenario failed or the run broke.")
    error: str | None = Field(default=None, description="Why the run itself could not finish.")
    results: list[ScenarioResultIn] = Field(default_factory=list, description="So far, while running.")
    scenarios: int = Field(description="How many scenarios the run has.")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    passed: int
    failed: int
    skipped: int
