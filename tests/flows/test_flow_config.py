"""A flow is validated where it is stored: every problem that would stop it from running names its node."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from booking_flow import BOOKING_FLOW
from pydantic import ValidationError

from core.agent_config import AgentConfig


def _agent(flow: dict[str, Any], **extra: Any) -> AgentConfig:
    return AgentConfig.model_validate({"flow": flow, **extra})


def _broken(change: Any) -> dict[str, Any]:
    flow = copy.deepcopy(BOOKING_FLOW)
    change(flow)
    return flow


def test_the_booking_flow_is_valid_and_round_trips() -> None:
    agent = _agent(BOOKING_FLOW)
    assert agent.flow is not None and [n.name for n in agent.flow.nodes] == ["greet", "collect", "confirm", "end"]
    assert AgentConfig.model_validate(agent.model_dump(mode="json")) == agent
    assert agent.flow.variables() == ["date", "name", "confirmed"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.update(start_node="nowhere"), "start_node 'nowhere' is not one of the nodes"),
    (lambda f: f["nodes"][0]["transitions"][0].update(to="missing"),
     "node 'greet': transition to unknown node 'missing'"),
    (lambda f: f["nodes"].append({"name": "orphan", "task_prompt": "x", "end": True}),
     "node 'orphan' is unreachable from the start node 'greet'"),
    (lambda f: f["nodes"][2]["transitions"].pop(0), "node 'confirm' can never reach an end node"),
    (lambda f: f["nodes"][1].update(tool_choice="save_everything"),
     "node 'collect': tool_choice 'save_everything' is not one of its functions"),
    (lambda f: f["nodes"][1].update(tools=["lookup"]), "node 'collect': tool 'lookup' is not one of the agent's"),
    (lambda f: f["nodes"][0]["transitions"].append({"to": "end"}),
     "node 'greet': condition transitions need variables to collect"),
    (lambda f: f["nodes"][2]["transitions"][0]["when"].update(variable="mood"),
     "node 'confirm': condition on 'mood', which no node collects"),
    (lambda f: f["nodes"].append(copy.deepcopy(f["nodes"][3])), "node 'end' is defined twice"),
])
def test_a_broken_flow_is_refused_naming_the_node(change: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        _agent(_broken(change))


def test_a_cycle_with_no_exit_is_refused() -> None:
    loop = {"start_node": "a", "nodes": [
        {"name": "a", "task_prompt": "x", "transitions": [{"to": "b", "function": "go_b", "description": "b"}]},
        {"name": "b", "task_prompt": "y", "transitions": [{"to": "a", "function": "go_a", "description": "a"}]},
    ]}
    with pytest.raises(ValidationError, match="node 'a' can never reach an end node"):
        _agent(loop)


def test_a_node_may_force_a_hand_off_but_not_share_its_name() -> None:
    from core.agent_flow import AgentFlow

    flow = AgentFlow.model_validate({
        "start_node": "greet",
        "nodes": [{"name": "greet", "task_prompt": "Hand over.", "tool_choice": "to_sales",
                   "transitions": [{"to": "done", "function": "finish", "description": "Done."}]},
                  {"name": "done", "task_prompt": "Bye.", "end": True}],
        "hand_offs": [{"name": "to_sales", "agent_id": "a1", "description": "Buying."}]})
    assert flow.problems(set()) == []
    flow.hand_offs[0].name = "finish"
    assert any("has the name of a hand-off" in p for p in flow.problems(set()))
