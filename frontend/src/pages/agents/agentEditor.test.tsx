import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import type { Agent } from "../../api/types";
import { json, ME, mockApi, renderApp, sessionRoutes } from "../../test/utils";
import AgentEditorPage from "./AgentEditorPage";
import { withDefaults } from "./defaults";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

const AGENT: Agent = {
  id: "ag1",
  name: "Receptionist",
  version: 2,
  config: withDefaults({ system_prompt: "You work at {{business}}.", greeting: "Hi from {{business}}", variables: { business: "Acme" } }),
  created_at: "2024-04-01T10:00:00Z",
  updated_at: "2024-05-01T10:00:00Z",
};

describe("agent editor: new agent", () => {
  it("creates an agent with the full typed config", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "POST /api/v1/agents": (c) => ({ ...AGENT, id: "new1", name: (c.body as { name: string }).name, version: 1 }),
    });
    renderApp(<AgentEditorPage />, { route: "/agents/new", path: "/agents/new" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Agent name"), "Support bot");
    await user.click(screen.getByRole("button", { name: "Create agent" }));
    await screen.findByText("elsewhere"); // navigated to /agents/new1
    const post = calls.find((c) => c.method === "POST" && c.url.endsWith("/agents"))!;
    const body = post.body as { name: string; config: Record<string, unknown> };
    expect(body.name).toBe("Support bot");
    expect(body.config).toMatchObject({ tts: { engine: "piper", voice: "en_US-joe-medium" }, interruption: { enabled: true } });
  });

  it("blocks saving without a name and says why", async () => {
    const { calls } = mockApi(sessionRoutes());
    renderApp(<AgentEditorPage />, { route: "/agents/new", path: "/agents/new" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Create agent" }));
    expect(screen.getByLabelText("Agent name")).toHaveAccessibleDescription("Give the agent a name");
    expect(calls.some((c) => c.method === "POST" && c.url.endsWith("/agents"))).toBe(false);
  });
});

describe("agent editor: existing agent", () => {
  beforeEach(() => {
    vi.spyOn(HTMLMediaElement.prototype, "play").mockResolvedValue(undefined);
    vi.spyOn(HTMLMediaElement.prototype, "pause").mockImplementation(() => {});
  });

  it("shows prompt variables with their defaults", async () => {
    mockApi({ ...sessionRoutes(), "GET /api/v1/agents/ag1": () => AGENT });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    expect(await screen.findByLabelText(/Default for/)).toHaveValue("Acme");
    expect(screen.getByLabelText("System prompt")).toHaveValue("You work at {{business}}.");
  });

  it("puts a server 422 next to the field, on the right tab", async () => {
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1": () => AGENT,
      "PUT /api/v1/agents/ag1": () =>
        json({ error: { code: "validation_error", message: "x", details: [{ path: "body.config.llm.max_tokens", message: "Too many for this model" }] } }, 422),
      "PATCH /api/v1/agents/ag1": () =>
        json({ error: { code: "validation_error", message: "x", details: [{ path: "body.config.llm.max_tokens", message: "Too many for this model" }] } }, 422),
    });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    const greeting = await screen.findByLabelText("Greeting");
    await user.clear(greeting);
    await user.type(greeting, "Hello there");
    await user.click(screen.getByRole("button", { name: "Save new version" }));
    const field = await screen.findByLabelText("Max tokens per reply");
    expect(field).toHaveAccessibleDescription("Too many for this model");
    expect(screen.getByRole("tab", { name: /STT · LLM · TTS/ })).toHaveAttribute("aria-selected", "true");
  });

  it("validates a tool's JSON schema as you type and blocks saving", async () => {
    const { calls } = mockApi({ ...sessionRoutes(), "GET /api/v1/agents/ag1": () => AGENT });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Tools" }));
    await user.click(screen.getByRole("button", { name: "Add tool" }));
    const schema = screen.getByLabelText("Parameters (JSON schema)");
    expect(screen.getByText("Schema is valid.")).toBeInTheDocument();
    fireEvent.change(schema, { target: { value: '{"type":"object","properties":{},"required":["order_id"]}' } });
    expect(await screen.findByText(/"order_id" is required but not declared/)).toBeInTheDocument();
    fireEvent.change(schema, { target: { value: "{oops" } });
    expect(await screen.findByText(/Invalid JSON/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Save new version" }));
    const region = screen.getByRole("region", { name: "Save" });
    expect(within(region).getByRole("alert")).toHaveTextContent(/tools\.0\.parameters/);
    expect(calls.some((c) => c.method === "PUT" || c.method === "PATCH")).toBe(false);
  });

  it("plays a voice sample through the backend", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1": () => AGENT,
      "GET /api/v1/voices": () => [
        { id: "en_US-joe-medium", engine: "piper", name: "Joe", language: "en-US" },
        { id: "en_US-amy-medium", engine: "piper", name: "Amy", language: "en-US" },
      ],
      "POST /api/v1/voices/sample": () => new Response(new Uint8Array([82, 73, 70, 70]), { headers: { "content-type": "audio/wav" } }),
    });
    globalThis.URL.createObjectURL = vi.fn(() => "blob:x");
    globalThis.URL.revokeObjectURL = vi.fn();
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Voice" }));
    const select = await screen.findByRole("combobox", { name: "Voice" });
    await user.selectOptions(select, "en_US-amy-medium");
    await user.click(screen.getByRole("button", { name: /Play sample of voice en_US-amy-medium/ }));
    await waitFor(() => expect(HTMLMediaElement.prototype.play).toHaveBeenCalled());
    const sample = calls.find((c) => c.url.endsWith("/voices/sample"))!;
    expect(sample.body).toMatchObject({ voice: "en_US-amy-medium", engine: "piper", text: "Hi from Acme" });
  });

  it("compares a past version and loads it into the editor", async () => {
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1": () => AGENT,
      "GET /api/v1/agents/ag1/versions": () => [
        { version: 2, created_at: "2024-05-01T10:00:00Z", config: AGENT.config },
        { version: 1, created_at: "2024-04-01T10:00:00Z", note: "first" , config: { ...AGENT.config, greeting: "Old hello" } },
      ],
      "GET /api/v1/agents/ag1/versions/1": () => ({ version: 1, created_at: "2024-04-01T10:00:00Z", config: { ...AGENT.config, greeting: "Old hello" } }),
    });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Version history" }));
    await user.click(await screen.findByRole("button", { name: /v1/ }));
    expect(await screen.findByRole("rowheader", { name: "greeting" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Load v1 into the editor" }));
    expect(await screen.findByLabelText("Greeting")).toHaveValue("Old hello");
    expect(screen.getByText("Unsaved changes")).toBeInTheDocument();
  });

  it("is read-only for members", async () => {
    mockApi({ ...sessionRoutes({ ...ME, role: "member" }), "GET /api/v1/agents/ag1": () => AGENT });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    expect(await screen.findByLabelText("System prompt")).toHaveAttribute("readonly");
    expect(screen.queryByRole("button", { name: "Save new version" })).not.toBeInTheDocument();
  });
});

describe("agent editor: knowledge", () => {
  it("picks knowledge bases for the agent and saves them in its config", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1": () => AGENT,
      "GET /api/v1/knowledge-bases": () => [
        { id: "kb1", name: "Clinic prices", description: "", source_count: 1, chunk_count: 12, created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z" },
      ],
      "PUT /api/v1/agents/ag1": (c) => ({ ...AGENT, version: 3, config: (c.body as { config: Agent["config"] }).config }),
    });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Knowledge" }));
    await user.click(await screen.findByLabelText("Clinic prices (12 chunks)"));
    await user.click(screen.getByRole("button", { name: "Save new version" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PUT")).toBe(true));
    const body = calls.find((c) => c.method === "PUT")!.body as { config: Agent["config"] };
    expect(body.config.knowledge).toMatchObject({ knowledge_base_ids: ["kb1"], mode: "inject", top_k: 3 });
  });
});

describe("agent editor: lookup and analysis", () => {
  it("sets the pre-call lookup and the post-call analysis with typed extracted fields", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents/ag1": () => AGENT,
      "GET /api/v1/org/secrets": () => [{ name: "crm-headers", mask: "••••", version: 1, created_at: "2026-12-01T10:00:00Z", updated_at: "2026-12-01T10:00:00Z" }],
      "PUT /api/v1/agents/ag1": (c) => ({ ...AGENT, version: 3, config: (c.body as { config: Agent["config"] }).config }),
    });
    renderApp(<AgentEditorPage />, { route: "/agents/ag1", path: "/agents/:agentId" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("tab", { name: "Lookup & analysis" }));
    await user.type(screen.getByLabelText("Lookup URL"), "https://crm.example.com/context");
    await user.selectOptions(await screen.findByLabelText("Headers (secret)"), "crm-headers");
    await user.click(screen.getByLabelText("Analyse each call after it ends"));
    await user.type(screen.getByLabelText("Success rubric"), "an appointment was booked");
    await user.click(screen.getByRole("button", { name: "Add field" }));
    const name = screen.getByLabelText("Field name");
    await user.clear(name);
    await user.type(name, "callback_requested");
    await user.selectOptions(screen.getByLabelText("Type"), "Yes / no");
    await user.click(screen.getByRole("button", { name: "Save new version" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PUT")).toBe(true));
    const body = calls.find((c) => c.method === "PUT")!.body as { config: Agent["config"] };
    expect(body.config.context_webhook).toMatchObject({ url: "https://crm.example.com/context", headers_secret_ref: "crm-headers" });
    expect(body.config.analysis).toEqual({
      summary_prompt: "Summarise the call in two sentences.",
      success_rubric: "an appointment was booked",
      extraction_schema: { type: "object", properties: { callback_requested: { type: "boolean" } } },
    });
  });
});
