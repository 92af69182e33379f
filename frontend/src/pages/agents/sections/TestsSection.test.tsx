import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../../api/http";
import type { AgentTestRun } from "../../../api/types";
import { json, mockApi, renderApp, sessionRoutes } from "../../../test/utils";
import { TestsSection } from "./TestsSection";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

const QUEUED: AgentTestRun = {
  id: "r1", version: 3, suite: "scenarios from the editor", status: "queued", error: null, results: [], scenarios: 2,
  created_at: "2024-05-01T10:00:00Z", started_at: null, finished_at: null, passed: 0, failed: 0, skipped: 0,
};
const DONE: AgentTestRun = {
  ...QUEUED, status: "failed", passed: 0, failed: 1, skipped: 1, finished_at: "2024-05-01T10:02:00Z",
  results: [
    { name: "asks for the hours", status: "failed", failures: ["expected {'kind': 'reply_contains'}"], call_id: "c9",
      transcript: ["agent: Hello", "caller: When are you open?"] },
    { name: "an impatient caller", status: "skipped", failures: ["skipped: simulated personas need a stronger LLM"],
      call_id: null, transcript: [] },
  ],
};

describe("agent tests: Run tests", () => {
  it("queues the pasted scenarios, shows the run's progress, then each scenario's result and transcript", async () => {
    let polls = 0;
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1/test-runs": () => (calls.some((c) => c.method === "POST") ? (++polls > 1 ? [DONE] : [QUEUED]) : []),
      "POST /api/v1/agents/ag1/test-runs/start": () => json(QUEUED, 202),
    });
    renderApp(<TestsSection agentId="ag1" currentVersion={3} savedScenarios={0} />,
      { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await screen.findByText("No test runs yet");
    await user.type(screen.getByLabelText("Scenarios (YAML)"), "scenarios: pasted");
    await user.click(screen.getByRole("button", { name: "Run tests" }));
    const runs = await screen.findByRole("list", { name: "Test runs" });
    expect(runs).toHaveTextContent("queued");
    expect(runs).toHaveTextContent("0 of 2 done");
    await waitFor(() => expect(runs).toHaveTextContent("1 failed, 1 skipped"), { timeout: 5000 });
    expect(within(runs).getAllByText("failed")).toHaveLength(2); // the run, and its first scenario
    expect(runs).toHaveTextContent("expected {'kind': 'reply_contains'}");
    expect(runs).toHaveTextContent("simulated personas need a stronger LLM");
    expect(runs).toHaveTextContent("caller: When are you open?");
    expect(within(runs).getByRole("link", { name: "call" })).toHaveAttribute("href", "/calls/c9");
    const post = calls.find((c) => c.method === "POST" && c.url.endsWith("/test-runs/start"))!;
    expect(post.body).toEqual({ suite_yaml: "scenarios: pasted", save_with_agent: false });
  });

  it("saves the pasted scenarios with the agent only when asked, and never over unsaved edits", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1/test-runs": () => [],
      "POST /api/v1/agents/ag1/test-runs/start": () => json(QUEUED, 202),
    });
    const view = renderApp(<TestsSection agentId="ag1" currentVersion={3} unsavedEdits />,
      { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Scenarios (YAML)"), "scenarios: pasted");
    const save = screen.getByLabelText("Save these scenarios with the agent (a new version)");
    expect(save).toBeDisabled();
    expect(save).toHaveAccessibleDescription("Save or discard your other changes to the agent first.");
    view.unmount();
    renderApp(<TestsSection agentId="ag1" currentVersion={3} />, { route: "/agents/ag1", path: "/agents/:agentId" });
    await user.type(await screen.findByLabelText("Scenarios (YAML)"), "scenarios: pasted");
    await user.click(screen.getByLabelText("Save these scenarios with the agent (a new version)"));
    await user.click(screen.getByRole("button", { name: "Run tests" }));
    const starts = () => calls.filter((c) => c.url.endsWith("/test-runs/start"));
    await waitFor(() => expect(starts()).toHaveLength(1));
    expect(starts()[0].body).toEqual({ suite_yaml: "scenarios: pasted", save_with_agent: true });
  });

  it("shows the backend's message naming the bad field", async () => {
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1/test-runs": () => [],
      "POST /api/v1/agents/ag1/test-runs/start": () => json({ error: {
        code: "validation_error", details: [],
        message: "body.suite_yaml: scenarios.0.expect.0: unknown expectation 'mood'; use one of call_ended" } }, 422),
    });
    renderApp(<TestsSection agentId="ag1" currentVersion={3} />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Run tests" }));
    expect(await screen.findByText(/scenarios\.0\.expect\.0: unknown expectation 'mood'/)).toBeInTheDocument();
  });
});
