"""A conversation flow: the agent as named steps instead of one prompt (issue 19, seed 002's call state machine).

Stored inside `AgentConfig.flow`, so it is versioned with the agent. The call runs it with `pipecat.flows`
(pipelines/flows.py); this module is only the typed shape and the checks that make a stored flow runnable:
a missing start node, a transition to no node, a node the start cannot reach, a loop that can never end, a tool
choice naming no tool of the node (a node may force a hand-off, which is global). Every problem names its node, so the API's 422 says where to look.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NodeName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")]
FunctionName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FlowVariable(_Strict):
    """A value the node collects from the caller; the LLM fills it as an argument of the node's save function."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    description: str = Field(default="", max_length=300)
    type: Literal["string", "boolean", "number"] = "string"
    choices: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50,
        description="The only values allowed (a JSON-schema enum, which grammar-constrained servers enforce).")


class FlowCondition(_Strict):
    """True when a collected variable equals a value (compared as text, case-insensitively for true/false)."""

    variable: str = Field(min_length=1, max_length=64)
    equals: str = Field(max_length=200)


class FlowTransition(_Strict):
    """Where the conversation goes next.

    With `function`: the LLM chooses it by calling that function (its `description` says when). Without: it is
    decided by `when` on the variables the node's save function collected (no `when`: the default branch).
    """

    to: NodeName
    function: FunctionName | None = None
    description: str = Field(default="", max_length=500)
    when: FlowCondition | None = None

    @model_validator(mode="after")
    def _shape(self) -> FlowTransition:
        if self.function is not None and self.when is not None:
            raise ValueError(f"transition to {self.to!r}: either a function (the LLM decides) or a condition, not both")
        if self.function is not None and not self.description:
            raise ValueError(f"transition function {self.function!r} needs a description for the LLM")
        return self


class FlowNode(_Strict):
    name: NodeName
    task_prompt: str = Field(min_length=1, max_length=5000, description="What the LLM does at this step.")
    say: str = Field(default="", max_length=1000,
                     description="Spoken on entering the node; may use {{variables}} collected so far.")
    collect: list[FlowVariable] = Field(default_factory=list, max_length=20)
    tools: list[FunctionName] = Field(default_factory=list, max_length=32,
                                      description="Agent tools offered at this node (webhooks, end_call, ...).")
    transitions: list[FlowTransition] = Field(default_factory=list, max_length=20)
    tool_choice: str = Field(default="auto", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$",
                             description="auto | none | required | one of this node's functions (forced).")
    respond_immediately: bool = Field(default=False, description="The LLM speaks on entering, before the caller.")
    reset_context: bool = Field(default=False, description="Start the LLM context afresh (small models stay focused).")
    end: bool = Field(default=False, description="Entering this node says `say` (or the goodbye) and hangs up.")
    position: tuple[float, float] | None = Field(default=None, description="Where the editor draws the node.")

    @property
    def save_function(self) -> str:
        """The function the LLM calls with the collected variables (only when the node collects any)."""
        return f"save_{self.name}"

    def function_names(self) -> list[str]:
        names = list(self.tools) + [t.function for t in self.transitions if t.function]
        return names + ([self.save_function] if self.collect else [])


class HandOff(_Strict):
    """Another agent of the same organisation the LLM may hand the caller to, with a summary of the call so far."""

    name: FunctionName
    agent_id: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=500)


class AgentFlow(_Strict):
    start_node: NodeName
    nodes: list[FlowNode] = Field(min_length=1, max_length=50)
    hand_offs: list[HandOff] = Field(default_factory=list, max_length=10)

    def node(self, name: str) -> FlowNode:
        return next(n for n in self.nodes if n.name == name)

    def variables(self) -> list[str]:
        return [v.name for n in self.nodes for v in n.collect]

    def problems(self, agent_tools: set[str]) -> list[str]:
        """Everything that would stop the flow from running, each naming its node; empty when it can run."""
        names = [n.name for n in self.nodes]
        problems = [f"node {n!r} is defined twice" for n in sorted({n for n in names if names.count(n) > 1})]
        if self.start_node not in names:
            problems.append(f"start_node {self.start_node!r} is not one of the nodes {names}")
        collected = set(self.variables())
        hand_offs = [h.name for h in self.hand_offs]
        problems += [f"hand-off {h!r} is defined twice" for h in sorted({h for h in hand_offs
                                                                         if hand_offs.count(h) > 1})]
        problems += [f"hand-off {h!r} has the name of a tool of the agent" for h in hand_offs if h in agent_tools]
        for node in self.nodes:
            problems += _node_problems(node, set(names), collected, agent_tools, set(hand_offs))
        if problems:
            return problems
        edges = {n.name: {t.to for t in n.transitions} for n in self.nodes}
        reachable = _reach({self.start_node}, edges)
        problems += [f"node {n!r} is unreachable from the start node {self.start_node!r}"
                     for n in names if n not in reachable]
        backwards: dict[str, set[str]] = {n: set() for n in names}
        for src, dsts in edges.items():
            for dst in dsts:
                backwards[dst].add(src)
        can_end = _reach({n.name for n in self.nodes if n.end}, backwards)
        problems += [f"node {n!r} can never reach an end node (a loop with no exit)"
                     for n in names if n in reachable and n not in can_end]
        return problems


def _node_problems(node: FlowNode, names: set[str], collected: set[str], agent_tools: set[str],
                   hand_offs: set[str]) -> list[str]:
    where = f"node {node.name!r}"
    problems = [f"{where}: transition to unknown node {t.to!r}" for t in node.transitions if t.to not in names]
    problems += [f"{where}: tool {t!r} is not one of the agent's tools {sorted(agent_tools)}"
                 for t in node.tools if t not in agent_tools]
    functions = node.function_names()
    problems += [f"{where}: function {f!r} is offered twice" for f in sorted({f for f in functions
                                                                             if functions.count(f) > 1})]
    problems += [f"{where}: function {f!r} has the name of a hand-off" for f in sorted(set(functions) & hand_offs)]
    conditional = [t for t in node.transitions if t.function is None]
    if conditional and not node.collect:
        problems.append(f"{where}: condition transitions need variables to collect")
    problems += [f"{where}: condition on {t.when.variable!r}, which no node collects"
                 for t in conditional if t.when is not None and t.when.variable not in collected]
    if node.end and node.transitions:
        problems.append(f"{where}: an end node has no transitions")
    if node.tool_choice not in ("auto", "none", "required", *functions, *hand_offs):
        problems.append(f"{where}: tool_choice {node.tool_choice!r} is not one of its functions {functions} "
                        f"or a hand-off")
    if node.tool_choice == "required" and not functions:
        problems.append(f"{where}: tool_choice 'required' needs at least one function")
    return problems


def _reach(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
