import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import { json, mockApi, renderApp, sessionRoutes } from "../../test/utils";
import { DEFAULT_RETRY, type Campaign, type ImportReport, type Progress } from "./api";
import CampaignDetailPage from "./CampaignDetailPage";
import CampaignWizardPage from "./CampaignWizardPage";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

const CAMPAIGN: Campaign = {
  id: "cp1",
  name: "Reminders",
  agent_id: "ag1",
  caller_number_ids: ["n1"],
  windows: { timezone: "UTC", use_contact_timezone: false, days: { mon: [{ start: "09:00", end: "17:00" }] } },
  max_concurrent_calls: 2,
  calls_per_second: 1,
  retry: DEFAULT_RETRY,
  voicemail: { detect: true, action: "hang_up" },
  default_region: "US",
  status: "running",
  contact_count: 10,
  created_at: "2024-05-01T10:00:00Z",
  updated_at: "2024-05-01T10:00:00Z",
};
const PROGRESS: Progress = {
  campaign_id: "cp1", status: "running", total: 10, by_status: { pending: 10 }, live_calls: 0, dials: 0, done: 0,
  updated_at: "2024-05-01T10:00:00Z",
};
const report = (over: Partial<ImportReport>): ImportReport => ({
  imported: 0, rows: 3, duplicates_in_file: 0, already_present: 0, on_dnc_list: 0, phone_column: "phone",
  variables: ["first_name"], errors: [], error_count: 0, ...over,
});

const base = {
  ...sessionRoutes(),
  "GET /api/v1/agents": () => [{ id: "ag1", name: "Receptionist", version: 1 }],
  "GET /api/v1/agents/ag1": () => ({ id: "ag1", name: "Receptionist", version: 1, config: { system_prompt: "Hi {{first_name}} {{plan}}", greeting: "" } }),
  "GET /api/v1/phone-numbers": () => [{ id: "n1", number: "+14155550123", carrier: "twilio" }],
};

describe("campaign wizard", () => {
  it("saves a draft, shows the server's row errors for a bad file, imports a clean one and starts", async () => {
    const { calls } = mockApi({
      ...base,
      "POST /api/v1/campaigns": () => json({ ...CAMPAIGN, status: "draft" }, 201),
      "POST /api/v1/campaigns/cp1/contacts": (c) => {
        const file = (c.body as FormData).get("file") as File;
        if (file.name === "bad.csv") {
          return json({ error: { code: "invalid_csv", message: "1 invalid row(s), nothing was imported (import i1): row 4: not a phone number",
            details: [{ path: "file.rows[4].phone", message: "not a phone number (value: 'banana')", type: "invalid_row" }] } }, 422);
        }
        return json(report({ imported: 2, rows: 2, import_id: "i2" }), 201);
      },
      "PATCH /api/v1/campaigns/cp1": (c) => ({ ...CAMPAIGN, ...(c.body as object), status: "draft" }),
      "POST /api/v1/campaigns/cp1/start": () => CAMPAIGN,
    });
    renderApp(<CampaignWizardPage />, { route: "/campaigns/new", path: "/campaigns/new" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Campaign name"), "Reminders");
    await user.click(screen.getByRole("checkbox", { name: /\+14155550123/ }));
    await user.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByRole("heading", { name: "Contacts" });
    expect(screen.getByText("draft saved")).toBeInTheDocument();

    const bad = new File(["phone,first_name\n4155550100,Ada\n4155550101,Bob\nbanana,Eve\n"], "bad.csv", { type: "text/csv" });
    await user.upload(screen.getByLabelText("Contacts CSV"), bad);
    expect(await screen.findByRole("cell", { name: "not a phone number (value: 'banana')" })).toBeInTheDocument();
    expect(screen.getByText("1 row error")).toBeInTheDocument();
    expect(screen.getByText(/No column or default for: plan/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Next" }));
    expect(screen.getByRole("alert")).toHaveTextContent(/Fix the rows with errors/);

    const good = new File(["phone,first_name\n4155550100,Ada\n4155550101,Bob\n"], "good.csv", { type: "text/csv" });
    await user.upload(screen.getByLabelText("Contacts CSV"), good);
    expect(await screen.findByText("2 imported")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Next" }));
    expect(screen.getByRole("heading", { name: "Calling hours" })).toHaveFocus();
    await user.click(screen.getByRole("checkbox", { name: "Saturday" }));
    await user.click(screen.getByRole("button", { name: "Next" }));
    await user.click(screen.getByRole("button", { name: "Next" }));
    expect(screen.getByText("2 imported")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Start campaign" }));
    await screen.findByText("elsewhere");
    const created = calls.find((c) => c.method === "POST" && c.url.endsWith("/api/v1/campaigns"))!.body as Record<string, unknown>;
    expect(created).toMatchObject({ name: "Reminders", agent_id: "ag1", caller_number_ids: ["n1"], calls_per_second: 1, default_region: "US" });
    const patched = calls.find((c) => c.method === "PATCH")!.body as Record<string, unknown>;
    expect(patched).toMatchObject({
      max_concurrent_calls: 5,
      voicemail: { detect: true, action: "hang_up", message: null },
      retry: { busy: { max_attempts: 3, delays_s: [600] } },
    });
    expect(Object.keys((patched.windows as { days: object }).days)).toEqual(["mon", "tue", "wed", "thu", "fri", "sat"]);
    expect(calls.at(-1)).toMatchObject({ method: "POST", url: "/api/v1/campaigns/cp1/start" });
  });

  it("won't go past a step with problems", async () => {
    const { calls } = mockApi(base);
    renderApp(<CampaignWizardPage />, { route: "/campaigns/new", path: "/campaigns/new" });
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Next" }));
    expect(screen.getByRole("alert")).toHaveTextContent("Name the campaign");
    expect(screen.getByRole("heading", { name: "Agent" })).toBeInTheDocument();
    expect(calls.some((c) => c.url.endsWith("/campaigns"))).toBe(false);
  });
});

describe("campaign detail", () => {
  it("updates progress live from the event stream and offers pause", async () => {
    const encoder = new TextEncoder();
    let push: (s: string) => void = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (s) => controller.enqueue(encoder.encode(s));
      },
    });
    const { calls } = mockApi({
      ...base,
      "GET /api/v1/campaigns/cp1": () => CAMPAIGN,
      "GET /api/v1/campaigns/cp1/progress": () => PROGRESS,
      "GET /api/v1/campaigns/cp1/contacts": () => ({ items: [], next_cursor: null }),
      "GET /api/v1/campaigns/cp1/events": () => new Response(stream, { headers: { "content-type": "text/event-stream" } }),
      "POST /api/v1/campaigns/cp1/pause": () => ({ ...CAMPAIGN, status: "paused" }),
    });
    renderApp(<CampaignDetailPage />, { route: "/campaigns/cp1", path: "/campaigns/:campaignId" });
    const bar = await screen.findByRole("progressbar", { name: "Campaign progress" });
    expect(bar).toHaveAttribute("aria-valuenow", "0");
    await waitFor(() => expect(screen.getByText("Live")).toBeInTheDocument());
    push(`event: progress\ndata: ${JSON.stringify({ ...PROGRESS, by_status: { pending: 3, completed: 6, busy: 1 }, done: 7, dials: 8, live_calls: 1 })}\n\n`);
    await waitFor(() => expect(bar).toHaveAttribute("aria-valuenow", "7"));
    const events = calls.find((c) => c.url.endsWith("/events"))!;
    expect(events.headers.Authorization).toBe("Bearer at-1"); // auth header, not a token in the URL
    await userEvent.click(screen.getByRole("button", { name: "Pause" }));
    expect(await screen.findByRole("button", { name: "Resume" })).toBeInTheDocument();
  });

  it("stops listening once the campaign completes", async () => {
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(`event: progress\ndata: ${JSON.stringify({ ...PROGRESS, status: "completed", by_status: { completed: 10 }, done: 10 })}\n\nevent: end\ndata: {}\n\n`));
        controller.close();
      },
    });
    let n = 0;
    mockApi({
      ...base,
      "GET /api/v1/campaigns/cp1": () => (n++ === 0 ? CAMPAIGN : { ...CAMPAIGN, status: "completed" }),
      "GET /api/v1/campaigns/cp1/progress": () => PROGRESS,
      "GET /api/v1/campaigns/cp1/contacts": () => ({ items: [], next_cursor: null }),
      "GET /api/v1/campaigns/cp1/events": () => new Response(stream, { headers: { "content-type": "text/event-stream" } }),
    });
    renderApp(<CampaignDetailPage />, { route: "/campaigns/cp1", path: "/campaigns/:campaignId" });
    expect(await screen.findByText("completed", { selector: ".badge" })).toBeInTheDocument();
    expect(screen.queryByText("Live")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Pause" })).not.toBeInTheDocument();
  });
});
