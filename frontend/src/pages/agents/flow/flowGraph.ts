/**
 * Pure helpers of the flow editor: the stored flow (core/agent_flow.py) as React Flow nodes and edges, a starter
 * flow, and the checks the backend makes (so the editor says "node X is unreachable" before a save round-trip).
 */
import type { Edge, Node } from "@xyflow/react";
import type { AgentFlow, FlowNode, FlowTransition } from "../../../api/types";

export const STARTER_FLOW: AgentFlow = {
  start_node: "greet",
  nodes: [
    {
      name: "greet", task_prompt: "Find out what the caller needs.", position: [0, 0],
      transitions: [{ to: "goodbye", function: "finished", description: "The caller has what they needed." }],
    },
    { name: "goodbye", task_prompt: "The conversation is over.", say: "Thank you for calling. Goodbye!", end: true, position: [0, 180] },
  ],
  hand_offs: [],
};

export function transitionLabel(t: FlowTransition): string {
  if (t.function) return t.function;
  if (t.when) return `${t.when.variable} = ${t.when.equals}`;
  return "otherwise";
}

export function toGraph(flow: AgentFlow, selected: string | null): { nodes: Node[]; edges: Edge[] } {
  const nodes: Node[] = flow.nodes.map((n, i) => ({
    id: n.name,
    position: { x: n.position?.[0] ?? (i % 3) * 260, y: n.position?.[1] ?? Math.floor(i / 3) * 180 },
    data: { label: `${n.name === flow.start_node ? "▶ " : ""}${n.name}${n.end ? " ■" : ""}` },
    selected: n.name === selected,
    type: n.end ? "output" : n.name === flow.start_node ? "input" : "default",
  }));
  const edges: Edge[] = flow.nodes.flatMap((n) =>
    (n.transitions ?? []).map((t, i) => ({ id: `${n.name}-${i}-${t.to}`, source: n.name, target: t.to, label: transitionLabel(t) })),
  );
  return { nodes, edges };
}

/** The same problems the backend refuses with a 422 (core/agent_flow.py AgentFlow.problems), by node name. */
export function flowProblems(flow: AgentFlow): string[] {
  const names = flow.nodes.map((n) => n.name);
  const problems: string[] = [];
  if (!names.includes(flow.start_node)) problems.push(`start node “${flow.start_node}” is not one of the nodes`);
  for (const n of flow.nodes) {
    for (const t of n.transitions ?? []) if (!names.includes(t.to)) problems.push(`node “${n.name}”: transition to unknown node “${t.to}”`);
  }
  if (problems.length) return problems;
  const edges = new Map(flow.nodes.map((n) => [n.name, (n.transitions ?? []).map((t) => t.to)]));
  const reach = (start: string[], next: (n: string) => string[]) => {
    const seen = new Set(start);
    const todo = [...start];
    while (todo.length) for (const m of next(todo.pop()!)) if (!seen.has(m)) { seen.add(m); todo.push(m); }
    return seen;
  };
  const reachable = reach([flow.start_node], (n) => edges.get(n) ?? []);
  const canEnd = reach(flow.nodes.filter((n) => n.end).map((n) => n.name), (n) => names.filter((m) => (edges.get(m) ?? []).includes(n)));
  for (const n of names) {
    if (!reachable.has(n)) problems.push(`node “${n}” is unreachable from the start node`);
    else if (!canEnd.has(n)) problems.push(`node “${n}” can never reach an end node`);
  }
  return problems;
}

export function renameNode(flow: AgentFlow, from: string, to: string): AgentFlow {
  const rename = (n: string) => (n === from ? to : n);
  return {
    ...flow,
    start_node: rename(flow.start_node),
    nodes: flow.nodes.map((n): FlowNode => ({
      ...n, name: rename(n.name), transitions: (n.transitions ?? []).map((t) => ({ ...t, to: rename(t.to) })),
    })),
  };
}
