"""Runs an agent's flow (core/agent_flow.py) with `pipecat.flows.FlowManager` inside the call pipeline.

Each stored node becomes a Pipecat `NodeConfig`: the node's task prompt as a system message, its functions
(transitions the LLM chooses, a `save_<node>` function whose arguments are the variables to collect and whose
conditions pick the next node, the agent tools it offers), and a pre-action that records the step as a
`call.flow_node` event and sets the node's `tool_choice` (what makes a small model reliable: llama.cpp enforces a
named function with a grammar). end_call and transfer_call are offered in every node, as in a single-prompt agent:
the calling agent's, and after a hand-off the new agent's (pipelines/hand_off.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pipecat.flows import ContextStrategy, ContextStrategyConfig, FlowManager, FlowsFunctionSchema, NodeConfig
from pipecat.flows.config import case_key
from pipecat.flows.types import NO_RESPONSE, ActionConfig, FlowArgs, FlowsDirectFunction
from pipecat.frames.frames import Frame, FunctionCallResultProperties, LLMSetToolChoiceFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.llm_service import FunctionCallParams, LLMService

from core.agent_flow import AgentFlow, FlowNode, FlowTransition, HandOff
from core.call_events import FlowNodeEntered, ResolvedAgent, ToolInvoked
from pipelines.control import CallControl, CallEventSink
from pipelines.hand_off import UNAVAILABLE, conversation_summary, node_name, task_message
from pipelines.llm import tool_choice_param
from pipelines.tools import ToolRegistration

AgentTools = Callable[[ResolvedAgent], list[ToolRegistration]]
AgentVoice = Callable[[ResolvedAgent], Frame]

GLOBAL_TOOLS = ("end_call", "transfer_call")


class FlowRun:
    """One call's walk through its flow: the nodes built on demand, the path taken, the variables collected."""

    def __init__(self, flow: AgentFlow, *, call_id: str, goodbye: str, tools: list[ToolRegistration],
                 variables: dict[str, str], control: CallControl, events: CallEventSink,
                 agent_tools: AgentTools | None = None, agent_voice: AgentVoice | None = None) -> None:
        """`agent_tools`: the tools of a hand-off's target agent, built for this call; `agent_voice`: the frame that
        switches the call's TTS to the target's voice (both from pipelines/factory.py)."""
        self.flow = flow
        self.call_id = call_id
        self.goodbye = goodbye
        self.control = control
        self.events = events
        self.tools = {t.schema.name: t for t in tools}
        self.agent_tools = agent_tools
        self.agent_voice = agent_voice
        self.variables = variables
        # {{name}} in a node's text must always resolve (pipecat.flows raises on an unknown key): every variable
        # the flow can collect starts empty, next to the agent's own variables.
        self.initial_state: dict[str, Any] = {**{name: "" for name in flow.variables()}, **variables}
        self.path: list[str] = []
        self._arriving: tuple[str | None, str] = (None, "start")
        self._llm: LLMService[Any] | None = None
        self._context: LLMContext | None = None
        self._worker: PipelineWorker | None = None
        self.manager: FlowManager | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, worker: PipelineWorker, llm: LLMService[Any], context: LLMContext,
               aggregators: LLMContextAggregatorPair) -> FlowManager:
        """Creates the FlowManager over the built pipeline; the flow starts when the pipeline does."""
        self._llm, self._context, self._worker = llm, context, worker
        globals_: list[FlowsFunctionSchema | FlowsDirectFunction] = [self._hand_off(h) for h in self.flow.hand_offs]
        manager = FlowManager(llm=llm, context_aggregator=aggregators, worker=worker,
                              global_functions=globals_)
        self.manager = manager

        @worker.event_handler("on_pipeline_started")
        async def _start(_worker: PipelineWorker, _frame: Any) -> None:
            manager.state.update(self.initial_state)
            await manager.initialize(self.node_config(self.flow.node(self.flow.start_node)))

        return manager

    def collected(self) -> dict[str, str]:
        state = self.manager.state if self.manager is not None else self.initial_state
        return {name: str(state.get(name, "")) for name in self.flow.variables()}

    # -- nodes --------------------------------------------------------------------------------------------------
    def node_config(self, node: FlowNode) -> NodeConfig:
        # end_call and transfer_call in every node (not FlowManager globals: a hand-off brings the new agent's).
        functions: list[FlowsFunctionSchema | FlowsDirectFunction] = [
            self._agent_tool(self.tools[name]) for name in GLOBAL_TOOLS if name in self.tools]
        functions += [self._agent_tool(self.tools[name]) for name in node.tools
                      if name not in GLOBAL_TOOLS and name in self.tools]
        functions += [self._transition(node, t) for t in node.transitions if t.function]
        if node.collect:
            functions.append(self._save(node))
        # FlowManager keys an action's handler by its type, first registration wins: one type per node.
        pre: list[ActionConfig] = [{"type": f"flow_entered_{node.name}", "handler": self._entered(node)}]
        if node.say and not node.end:
            pre.append({"type": "tts_say", "text": node.say})
        config: NodeConfig = {
            "name": node.name,
            "task_messages": [{"role": "system", "content": node.task_prompt}],
            "functions": functions,
            "pre_actions": pre,
            "respond_immediately": node.respond_immediately and not node.end,
        }
        if node.reset_context:
            config["context_strategy"] = ContextStrategyConfig(strategy=ContextStrategy.RESET)
        return config

    def _entered(self, node: FlowNode) -> Any:
        async def handler(_action: dict[str, Any], manager: FlowManager) -> None:
            from_node, via = self._arriving
            self.path.append(node.name)
            self.events.flow_node(FlowNodeEntered(
                call_id=self.call_id, node=node.name, from_node=from_node, via=via, variables=self.collected(),
                at_ms=self.events.timeline_ms()))
            choice: Any = node.tool_choice
            if choice not in ("auto", "none", "required"):
                choice = {"type": "function", "function": {"name": choice}}
            frame = LLMSetToolChoiceFrame(tool_choice=choice)
            frame.interruptible = False
            await manager.worker.queue_frame(frame)
            if node.end:
                goodbye = _fill(node.say, manager.state) if node.say else self.goodbye
                self._spawn(self.control.end_call("agent_hangup", goodbye=goodbye, detail=f"flow node {node.name}"))

        return handler

    def _go(self, node: FlowNode, target: str, via: str) -> NodeConfig:
        self._arriving = (node.name, via)
        return self.node_config(self.flow.node(target))

    def _transition(self, node: FlowNode, transition: FlowTransition) -> FlowsFunctionSchema:
        name = transition.function or ""

        async def handler(_args: FlowArgs, _manager: FlowManager) -> tuple[Any, NodeConfig]:
            return None, self._go(node, transition.to, name)

        return FlowsFunctionSchema(name=name, description=transition.description, properties={}, required=[],
                                   handler=handler)

    def _save(self, node: FlowNode) -> FlowsFunctionSchema:
        properties = {v.name: {"type": v.type, "description": v.description or v.name,
                               **({"enum": v.choices} if v.choices else {})} for v in node.collect}
        conditional = [t for t in node.transitions if t.function is None]

        async def handler(args: FlowArgs, manager: FlowManager) -> tuple[Any, NodeConfig | None]:
            values = {v.name: _text(args.get(v.name)) for v in node.collect}
            manager.state.update(values)
            for t in conditional:
                if t.when is None or case_key(manager.state.get(t.when.variable, "")) == case_key(t.when.equals):
                    return {"saved": values}, self._go(node, t.to, node.save_function)
            return {"saved": values}, None

        return FlowsFunctionSchema(
            name=node.save_function, description=f"Save what the caller said: {', '.join(properties)}.",
            properties=properties, required=list(properties), handler=handler)

    # -- hand-offs to other agents of the organisation (pipelines/hand_off.py) ------------------------------------
    def _hand_off(self, hand_off: HandOff) -> FlowsFunctionSchema:
        async def handler(_args: FlowArgs, manager: FlowManager) -> tuple[Any, NodeConfig | None]:
            started = time.perf_counter()
            target = await self.control.hand_off_agent(hand_off.agent_id)
            if target is None:
                self._tool_event(hand_off.name, False, started,
                                 f"agent {hand_off.agent_id} is unavailable (deleted or not found); call continues")
                if self._context is not None:
                    self._context.set_tool_choice("auto")
                return {"error": UNAVAILABLE}, None
            self._tool_event(hand_off.name, True, started, f"handed off to agent {target.agent_name!r} "
                             f"({target.agent_id} version {target.agent_version})")
            self._arriving = (self.path[-1] if self.path else None, hand_off.name)
            return {"status": "handed_off"}, self._agent_node(target, manager)

        return FlowsFunctionSchema(name=hand_off.name, description=hand_off.description, properties={},
                                   required=[], handler=handler)

    def _agent_node(self, target: ResolvedAgent, manager: FlowManager) -> NodeConfig:
        """The rest of the call as the target agent: its prompt, tools (its own end_call and transfer_call
        included), tool choice, voice and greeting."""
        prompt, greeting = target.config.render(self.variables)
        summary = conversation_summary(self._context.get_messages() if self._context else [], self.collected())
        tools = self.agent_tools(target) if self.agent_tools is not None else []
        functions: list[FlowsFunctionSchema | FlowsDirectFunction] = [self._agent_tool(t) for t in tools]
        name = node_name(target.agent_name)
        voice = self.agent_voice(target) if self.agent_voice is not None else None
        choice = tool_choice_param(target.config.llm) or "auto"

        async def entered(_action: dict[str, Any], _manager: FlowManager) -> None:
            from_node, via = self._arriving
            self.path.append(name)
            self.events.flow_node(FlowNodeEntered(
                call_id=self.call_id, node=name, from_node=from_node, via=via, variables=self.collected(),
                at_ms=self.events.timeline_ms()))
            if self._context is not None:
                self._context.set_tool_choice(choice)  # type: ignore[arg-type]
            if voice is not None:  # queued before the greeting below: the greeting is in the new voice
                await manager.worker.queue_frame(voice)

        pre: list[ActionConfig] = [{"type": f"hand_off_{target.agent_id}", "handler": entered}]
        if greeting:
            pre.append({"type": "tts_say", "text": greeting})
        return {
            "name": name,
            "role_message": prompt,
            "task_messages": [{"role": "system", "content": task_message(summary)}],
            "functions": functions,
            "pre_actions": pre,
            "respond_immediately": not greeting,
            "context_strategy": ContextStrategyConfig(strategy=ContextStrategy.RESET),
        }

    def _tool_event(self, name: str, ok: bool, started: float, detail: str) -> None:
        self.events.tool(ToolInvoked(call_id=self.call_id, name=name, ok=ok, detail=detail[:500],
                                     duration_ms=round((time.perf_counter() - started) * 1000, 1)))

    # -- the agent's own tools (webhooks, end_call, transfer_call), written for Pipecat's plain function calls -----
    def _agent_tool(self, tool: ToolRegistration) -> FlowsFunctionSchema:
        async def handler(args: FlowArgs, _manager: FlowManager) -> tuple[Any, Any]:
            done: asyncio.Future[tuple[Any, FunctionCallResultProperties | None]] = (
                asyncio.get_running_loop().create_future())

            async def result_callback(result: Any, *, properties: FunctionCallResultProperties | None = None) -> None:
                if not done.done():
                    done.set_result((result, properties))

            assert self._llm is not None and self._context is not None and self._worker is not None
            params = FunctionCallParams(function_name=tool.schema.name, tool_call_id="", arguments=args,
                                        llm=self._llm, pipeline_worker=self._worker, context=self._context,
                                        result_callback=result_callback)
            # end_call and transfer_call answer first and then keep going (goodbye, hang-up): that part runs on.
            running: asyncio.Future[Any] = asyncio.ensure_future(tool.handler(params))
            waiting: list[asyncio.Future[Any]] = [running, done]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not done.done():
                running.result()
                return {"status": "done"}, None
            result, properties = done.result()
            return result, (NO_RESPONSE if properties is not None and properties.run_llm is False else None)

        return FlowsFunctionSchema(name=tool.schema.name, description=tool.schema.description,
                                   properties=tool.schema.properties, required=tool.schema.required,
                                   handler=handler, timeout_secs=tool.timeout_s)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _text(value: Any) -> str:
    return case_key(value) if isinstance(value, bool) else ("" if value is None else str(value))[:200]


def _fill(text: str, state: dict[str, Any]) -> str:
    for key, value in state.items():
        text = text.replace("{{" + key + "}}", str(value)).replace("{{ " + key + " }}", str(value))
    return text
