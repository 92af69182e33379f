"""The stronger LLM of simulated-persona scenarios (AGENT_TESTS_LLM_*): it plays the caller and judges the call.

Built on pipecat.evals rather than our own versions: the persona speaks under `EvalPersona`'s instruction with its
`end_call` tool (the persona hangs up by calling it), and the call is judged by `EvalSimulationJudge` against the
scenario's `success` rubric, as `pipecat eval` judges a simulation. The persona is driven one turn at a time over
the browser-call socket (simulated_caller.py), so it talks to the agent's real phone pipeline. The embedded
SmolLM2-135M cannot do either job: with no AGENT_TESTS_LLM_* set, persona scenarios are skipped, saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from pipecat.evals.persona import END_CALL_FUNCTION, END_CALL_SCHEMA, EvalPersona
from pipecat.evals.simulation import EvalSimulationScenario
from pipecat.evals.simulation_judge import EvalSimulationJudge
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService

from backend.config import BackendSettings
from core.agent_tests import Scenario


@dataclass
class PersonaTurn:
    say: str
    hung_up: bool


@dataclass
class Verdict:
    passed: bool
    reason: str


def judge_service(config: dict[str, Any]) -> LLMService[Any]:
    """pipecat.evals' `judge.eval.factory`: the judging LLM, any OpenAI-compatible endpoint."""
    return OpenAILLMService(api_key=config.get("api_key") or "none", base_url=config["endpoint"],
                            settings=OpenAILLMService.Settings(model=config["model"]))


class PersonaLlm:
    def __init__(self, settings: BackendSettings, http: httpx.AsyncClient) -> None:
        self._base = settings.agent_tests_llm_base_url.rstrip("/")
        self._model = settings.agent_tests_llm_model
        key = settings.agent_tests_llm_api_key
        self._key = key.get_secret_value() if key is not None else ""
        self._http = http

    @property
    def configured(self) -> bool:
        return bool(self._base and self._model)

    def _config(self) -> dict[str, Any]:
        return {"factory": f"{__name__}.judge_service", "endpoint": self._base, "model": self._model,
                "api_key": self._key}

    async def reply(self, scenario: Scenario, heard: list[tuple[str, str]]) -> PersonaTurn:
        """The persona's next line, given the call so far as (speaker, text) with speaker "agent" or "caller"."""
        persona = EvalPersona(scenario.persona, scenario.goal or scenario.persona, judge_service(self._config()))
        messages = [{"role": "system", "content": persona.instruction}]
        # pipecat.evals' persona context: the bot's turns are the user's messages, the persona's its own.
        messages += [{"role": "user" if who == "agent" else "assistant", "content": text} for who, text in heard]
        body = {"model": self._model, "messages": messages, "max_tokens": 120, "temperature": 0.7,
                "tools": [{"type": "function", "function": END_CALL_SCHEMA.to_default_dict()}]}
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        resp = await self._http.post(f"{self._base}/chat/completions", json=body, headers=headers, timeout=60.0)
        resp.raise_for_status()
        message = resp.json()["choices"][0]["message"]
        calls = [c["function"]["name"] for c in message.get("tool_calls") or []]
        return PersonaTurn(say=(message.get("content") or "").strip(), hung_up=END_CALL_FUNCTION in calls)

    async def judge(self, scenario: Scenario, heard: list[tuple[str, str]]) -> Verdict:
        """pipecat.evals' verdict on the scenario's `success` rubric over the conversation."""
        simulation = EvalSimulationScenario(name=scenario.name, persona=scenario.persona,
                                            goal=scenario.goal or scenario.persona, success=scenario.success,
                                            judge=self._config())
        # In a pipecat.evals conversation the persona is the user and the bot the assistant.
        messages = [{"role": "assistant" if who == "agent" else "user", "content": text} for who, text in heard]
        judgement = await EvalSimulationJudge(simulation).judge(messages)
        reason = judgement.goal.reason or json.dumps(judgement.goal.verdict)
        return Verdict(passed=judgement.goal.verdict == "yes", reason=reason)
