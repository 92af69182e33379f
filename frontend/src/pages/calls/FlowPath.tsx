import { ReactFlow, type Edge, type Node } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import type { FlowStep } from "../../api/types";
import { Card } from "../../components/ui";
import { fmtDuration } from "../../lib/format";

/** The path a flow agent's call took (one call.flow_node event per step) and the variables it collected. */
export function FlowPath({ steps, variables }: { steps: FlowStep[]; variables: Record<string, string> }) {
  const nodes: Node[] = steps.map((s, i) => ({ id: String(i), position: { x: i * 200, y: 0 }, data: { label: s.node } }));
  const edges: Edge[] = steps.slice(1).map((s, i) => ({ id: `e${i}`, source: String(i), target: String(i + 1), label: s.via }));
  return (
    <Card title="Flow">
      <div style={{ height: 140 }} aria-hidden="true">
        <ReactFlow nodes={nodes} edges={edges} nodesDraggable={false} nodesConnectable={false} fitView />
      </div>
      <ol className="plain-list" aria-label="Flow path">
        {steps.map((s, i) => (
          <li key={i}>
            <strong>{s.node}</strong> <span className="muted small">at {fmtDuration((s.at_ms ?? 0) / 1000)}{i > 0 && s.via ? ` · via ${s.via}` : ""}</span>
          </li>
        ))}
      </ol>
      {Object.keys(variables).length > 0 && (
        <dl className="kv kv-tight" aria-label="Collected variables">
          {Object.entries(variables).map(([k, v]) => (
            <div key={k} style={{ display: "contents" }}><dt>{k}</dt><dd>{v || "—"}</dd></div>
          ))}
        </dl>
      )}
    </Card>
  );
}
