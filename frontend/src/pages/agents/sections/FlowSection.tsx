import { useState } from "react";
import { Background, Controls, ReactFlow, type NodeChange } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import type { AgentFlow, FlowNode, FlowTransition } from "../../../api/types";
import { Button, Card, Checkbox, EmptyState, SelectField, TextArea, TextField } from "../../../components/ui";
import { STARTER_FLOW, flowProblems, renameNode, toGraph } from "../flow/flowGraph";
import type { SectionProps } from "./types";

/** The agent as a flow: a canvas of nodes and transitions (React Flow), a list of nodes, and a panel per node. */
export function FlowSection({ config, set, errors, readOnly }: SectionProps) {
  const flow = config.flow ?? null;
  const [selected, setSelected] = useState<string | null>(flow?.start_node ?? null);
  if (!flow) {
    return (
      <Card title="Conversation flow">
        <EmptyState
          title="This agent is a single prompt"
          action={!readOnly && <Button onClick={() => { set("flow", STARTER_FLOW); setSelected(STARTER_FLOW.start_node); }}>Turn into a flow</Button>}
        >
          A flow splits the conversation into steps, each with its own task, tools and transitions.
        </EmptyState>
      </Card>
    );
  }
  const setFlow = (f: AgentFlow) => set("flow", f);
  const node = flow.nodes.find((n) => n.name === selected) ?? null;
  const updateNode = (patch: Partial<FlowNode>) => {
    if (!node) return;
    let next: AgentFlow = { ...flow, nodes: flow.nodes.map((n) => (n.name === node.name ? { ...n, ...patch } : n)) };
    if (patch.name !== undefined && patch.name !== node.name) {
      next = renameNode({ ...flow, nodes: flow.nodes.map((n) => (n.name === node.name ? { ...n, ...patch, name: node.name } : n)) }, node.name, patch.name);
      setSelected(patch.name);
    }
    setFlow(next);
  };
  const addNode = () => {
    let i = flow.nodes.length + 1;
    while (flow.nodes.some((n) => n.name === `step_${i}`)) i++;
    const name = `step_${i}`;
    setFlow({ ...flow, nodes: [...flow.nodes, { name, task_prompt: "Describe this step.", position: [40 * i, 120 * i] }] });
    setSelected(name);
  };
  const onNodesChange = (changes: NodeChange[]) => {
    const moved = new Map(changes.flatMap((c) => (c.type === "position" && c.position ? [[c.id, c.position] as const] : [])));
    if (moved.size && !readOnly) {
      setFlow({ ...flow, nodes: flow.nodes.map((n) => (moved.has(n.name) ? { ...n, position: [moved.get(n.name)!.x, moved.get(n.name)!.y] } : n)) });
    }
  };
  const graph = toGraph(flow, selected);
  const problems = flowProblems(flow);
  const serverError = errors.flow;
  return (
    <Card
      title="Conversation flow"
      actions={!readOnly && (
        <>
          <Button onClick={addNode}>Add node</Button>{" "}
          <Button variant="ghost" onClick={() => set("flow", null)}>Back to a single prompt</Button>
        </>
      )}
    >
      {(problems.length > 0 || serverError) && (
        <ul className="inline-error" role="alert" aria-label="Flow problems">
          {problems.map((p) => <li key={p}>{p}</li>)}
          {serverError && <li>{serverError}</li>}
        </ul>
      )}
      <div className="flow-editor">
        <div className="flow-canvas" style={{ height: 420 }} aria-hidden="true">
          <ReactFlow
            nodes={graph.nodes}
            edges={graph.edges}
            onNodesChange={onNodesChange}
            onNodeClick={(_, n) => setSelected(n.id)}
            nodesDraggable={!readOnly}
            nodesConnectable={false}
            fitView
          >
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
        <nav aria-label="Flow nodes" className="flow-node-list">
          <SelectField label="Start node" value={flow.start_node} onChange={(e) => setFlow({ ...flow, start_node: e.target.value })} disabled={readOnly}>
            {flow.nodes.map((n) => <option key={n.name}>{n.name}</option>)}
          </SelectField>
          <ul>
            {flow.nodes.map((n) => (
              <li key={n.name}>
                <button type="button" className="link-btn" aria-current={n.name === selected ? "true" : undefined} onClick={() => setSelected(n.name)}>
                  {n.name}
                </button>
              </li>
            ))}
          </ul>
        </nav>
        {node && (
          <NodePanel
            key={node.name}
            node={node}
            nodeNames={flow.nodes.map((n) => n.name)}
            readOnly={readOnly}
            update={updateNode}
            remove={flow.nodes.length > 1 ? () => { setFlow({ ...flow, nodes: flow.nodes.filter((n) => n.name !== node.name) }); setSelected(null); } : undefined}
          />
        )}
      </div>
    </Card>
  );
}

function NodePanel({ node, nodeNames, readOnly, update, remove }: {
  node: FlowNode; nodeNames: string[]; readOnly: boolean; update: (patch: Partial<FlowNode>) => void; remove?: () => void;
}) {
  const [name, setName] = useState(node.name);
  const transitions = node.transitions ?? [];
  const collect = node.collect ?? [];
  const setTransition = (i: number, patch: Partial<FlowTransition>) =>
    update({ transitions: transitions.map((t, j) => (j === i ? { ...t, ...patch } : t)) });
  return (
    <section className="flow-node-panel" aria-label={`Node ${node.name}`}>
      <h3>Node {node.name}</h3>
      <TextField label="Node name" value={name} readOnly={readOnly} onChange={(e) => setName(e.target.value)}
        onBlur={() => /^[A-Za-z_][A-Za-z0-9_]{0,47}$/.test(name) && update({ name })} hint="Letters, digits and _" />
      <TextArea label="Task prompt" value={node.task_prompt} readOnly={readOnly} rows={3} onChange={(e) => update({ task_prompt: e.target.value })} />
      <TextField label="Say on entering" value={node.say ?? ""} readOnly={readOnly} onChange={(e) => update({ say: e.target.value })} hint="May use {{variables}} collected earlier" />
      <TextField label="Variables to collect" value={collect.map((v) => v.name).join(", ")} readOnly={readOnly}
        onChange={(e) => update({ collect: e.target.value.split(",").map((s) => s.trim()).filter(Boolean).map((n) => collect.find((v) => v.name === n) ?? { name: n }) })}
        hint={collect.length ? `Saved by the function save_${node.name}` : "Comma-separated names"} />
      <TextField label="Tool choice" value={node.tool_choice ?? "auto"} readOnly={readOnly} onChange={(e) => update({ tool_choice: e.target.value })} hint="auto, none, required, or a function to force" />
      <Checkbox label="End the call here" checked={node.end ?? false} onChange={(v) => update({ end: v, transitions: v ? [] : transitions })} disabled={readOnly} />
      <Checkbox label="Start the model's context afresh" checked={node.reset_context ?? false} onChange={(v) => update({ reset_context: v })} disabled={readOnly} />
      {!node.end && (
        <fieldset>
          <legend>Transitions</legend>
          {transitions.map((t, i) => (
            <div key={i} className="grid-3">
              <SelectField label={`Transition ${i + 1} to`} value={t.to} onChange={(e) => setTransition(i, { to: e.target.value })} disabled={readOnly}>
                {!nodeNames.includes(t.to) && <option value={t.to}>{t.to} (missing)</option>}
                {nodeNames.map((n) => <option key={n}>{n}</option>)}
              </SelectField>
              <TextField label={`Transition ${i + 1} function`} value={t.function ?? ""} readOnly={readOnly}
                onChange={(e) => setTransition(i, { function: e.target.value || null })} hint="Empty: decided by a condition" />
              {t.function ? (
                <TextField label={`Transition ${i + 1} when (for the model)`} value={t.description ?? ""} readOnly={readOnly} onChange={(e) => setTransition(i, { description: e.target.value })} />
              ) : (
                <TextField label={`Transition ${i + 1} condition`} value={t.when ? `${t.when.variable}=${t.when.equals}` : ""} readOnly={readOnly}
                  onChange={(e) => {
                    const [variable, ...rest] = e.target.value.split("=");
                    setTransition(i, { when: variable.trim() ? { variable: variable.trim(), equals: rest.join("=").trim() } : null });
                  }} hint="variable=value; empty: otherwise" />
              )}
              {!readOnly && <Button variant="ghost" onClick={() => update({ transitions: transitions.filter((_, j) => j !== i) })}>Remove transition {i + 1}</Button>}
            </div>
          ))}
          {!readOnly && <Button onClick={() => update({ transitions: [...transitions, { to: nodeNames[0] }] })}>Add transition</Button>}
        </fieldset>
      )}
      {!readOnly && remove && <Button variant="ghost" onClick={remove}>Delete node {node.name}</Button>}
    </section>
  );
}
