import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import type { AgentConfig, AgentFlow, CallDetail } from "../../../api/types";
import { tokens } from "../../../api/http";
import { mockApi, renderApp, sessionRoutes } from "../../../test/utils";
import CallDetailPage from "../../calls/CallDetailPage";
import { withDefaults } from "../defaults";
import { FlowSection } from "../sections/FlowSection";
import { TestsSection } from "../sections/TestsSection";
import { STARTER_FLOW, flowProblems, renameNode, toGraph } from "./flowGraph";

// React Flow measures its nodes; jsdom has no layout, so a ResizeObserver that never fires is enough.
beforeAll(() => {
  vi.stubGlobal("ResizeObserver", class { observe() {} unobserve() {} disconnect() {} });
});
afterEach(() => tokens.clear());

const BOOKING: AgentFlow = {
  start_node: "greet",
  hand_offs: [],
  nodes: [
    { name: "greet", task_prompt: "Greet", transitions: [{ to: "collect", function: "start_booking", description: "wants a booking" }] },
    { name: "collect", task_prompt: "Collect", collect: [{ name: "date" }], transitions: [{ to: "end", when: { variable: "date", equals: "Friday" } }, { to: "collect" }] },
    { name: "end", task_prompt: "Bye", end: true },
  ],
};

describe("flow graph helpers", () => {
  it("draws nodes and labelled edges", () => {
    const g = toGraph(BOOKING, "collect");
    expect(g.nodes.map((n) => n.id)).toEqual(["greet", "collect", "end"]);
    expect(g.nodes.find((n) => n.id === "collect")!.selected).toBe(true);
    expect(g.edges.map((e) => e.label)).toEqual(["start_booking", "date = Friday", "otherwise"]);
  });

  it("finds the problems the backend refuses, by node", () => {
    expect(flowProblems(BOOKING)).toEqual([]);
    const dangling = { ...BOOKING, nodes: BOOKING.nodes.map((n) => (n.name === "greet" ? { ...n, transitions: [{ to: "nowhere" }] } : n)) };
    expect(flowProblems(dangling)).toEqual(["node “greet”: transition to unknown node “nowhere”"]);
    const loop: AgentFlow = { ...BOOKING, nodes: [BOOKING.nodes[0], { ...BOOKING.nodes[1], transitions: [{ to: "collect" }] }, BOOKING.nodes[2]] };
    expect(flowProblems(loop)).toEqual(["node “greet” can never reach an end node", "node “collect” can never reach an end node", "node “end” is unreachable from the start node"]);
  });

  it("renames a node everywhere it is referenced", () => {
    const renamed = renameNode(BOOKING, "collect", "details");
    expect(renamed.nodes[0].transitions![0].to).toBe("details");
    expect(renamed.nodes[1].transitions![1].to).toBe("details");
  });
});

function Harness({ initial }: { initial: AgentConfig }) {
  const [config, setConfig] = useState(initial);
  return (
    <>
      <FlowSection config={config} set={(path, value) => setConfig((c) => ({ ...c, [path]: value }))} errors={{}} readOnly={false} />
      <output data-testid="flow">{JSON.stringify(config.flow ?? null)}</output>
    </>
  );
}

describe("flow editor", () => {
  it("turns a single-prompt agent into a flow and edits a node in its side panel", async () => {
    render(<Harness initial={withDefaults({})} />);
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Turn into a flow" }));
    const nav = screen.getByRole("navigation", { name: "Flow nodes" });
    expect(within(nav).getAllByRole("button").map((b) => b.textContent)).toEqual(STARTER_FLOW.nodes.map((n) => n.name));

    const panel = screen.getByRole("region", { name: "Node greet" });
    const prompt = within(panel).getByLabelText("Task prompt");
    await user.clear(prompt);
    await user.type(prompt, "Ask what day suits them.");
    expect(JSON.parse(screen.getByTestId("flow").textContent!).nodes[0].task_prompt).toBe("Ask what day suits them.");

    await user.click(screen.getByRole("button", { name: "Add node" }));
    expect(screen.getByRole("alert", { name: "Flow problems" })).toHaveTextContent("node “step_3” is unreachable from the start node");
    await user.click(within(nav).getByRole("button", { name: "greet" }));
    await user.click(screen.getByRole("button", { name: "Add transition" }));
    await user.selectOptions(screen.getByLabelText("Transition 2 to"), "step_3");
    expect(screen.getByRole("alert", { name: "Flow problems" })).toHaveTextContent("node “step_3” can never reach an end node");
  });
});

describe("call detail flow view", () => {
  it("shows the path through the flow with the variables collected", async () => {
    const call: CallDetail = {
      id: "c1", direction: "inbound", carrier: "twilio", from_number: "+14155550100", to_number: "+14155550123",
      status: "completed", created_at: "2024-05-01T10:00:00Z", turns: [], has_recording: false,
      flow_path: [{ node: "greet", via: "start", at_ms: 0 }, { node: "collect", from_node: "greet", via: "start_booking", at_ms: 4000 }],
      flow_variables: { date: "Friday", name: "Peter" },
    };
    mockApi({ ...sessionRoutes(), "GET /api/v1/calls/c1": () => call });
    renderApp(<CallDetailPage />, { route: "/calls/c1", path: "/calls/:callId" });
    const path = await screen.findByRole("list", { name: "Flow path" });
    expect(within(path).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["greet at 0:00", "collect at 0:04 · via start_booking"]);
    expect(screen.getByLabelText("Collected variables")).toHaveTextContent("dateFridaynamePeter");
  });
});

describe("agent test runs", () => {
  it("lists the runs per version with their failures", async () => {
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1/test-runs": () => [{
        id: "r1", version: 3, suite: "booking.yaml", created_at: "2024-05-01T10:00:00Z", passed: 1, failed: 1, skipped: 0,
        results: [{ name: "books", status: "passed" }, { name: "transfers", status: "failed", failures: ["expected transferred"] }],
      }],
    });
    renderApp(<TestsSection agentId="ag1" currentVersion={3} />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const runs = await screen.findByRole("list", { name: "Test runs" });
    expect(runs).toHaveTextContent("v3");
    expect(runs).toHaveTextContent("1 passed, 1 failed, 0 skipped");
    expect(runs).toHaveTextContent("expected transferred");
  });
});
