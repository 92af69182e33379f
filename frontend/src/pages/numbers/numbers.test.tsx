import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import { json, ME, mockApi, renderApp, sessionRoutes } from "../../test/utils";
import PhoneNumbersPage from "./PhoneNumbersPage";
import SettingsPage from "../settings/SettingsPage";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

const agents = () => [{ id: "ag1", name: "Receptionist", version: 1 }];

describe("phone numbers", () => {
  it("adds a number with E.164 validation and links it to an agent", async () => {
    const numbers: unknown[] = [];
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents": agents,
      "GET /api/v1/phone-numbers": () => numbers,
      "GET /api/v1/org/carrier-credentials": () => [],
      "POST /api/v1/phone-numbers": (c) => {
        const n = { id: "n1", created_at: "2024-05-01T10:00:00Z", ...(c.body as object) };
        numbers.push(n);
        return json(n, 201);
      },
    });
    renderApp(<PhoneNumbersPage />, { route: "/numbers", path: "/numbers" });
    expect(await screen.findByText("No phone numbers")).toBeInTheDocument();
    const user = userEvent.setup();
    await user.click(screen.getAllByRole("button", { name: "Add number" })[0]);
    const dialog = screen.getByRole("dialog", { name: "Add a phone number" });
    await user.type(within(dialog).getByLabelText("Number"), "415 555");
    await user.click(within(dialog).getByRole("button", { name: "Add number" }));
    expect(within(dialog).getByLabelText("Number")).toHaveAccessibleDescription(/E\.164/);
    await user.clear(within(dialog).getByLabelText("Number"));
    await user.type(within(dialog).getByLabelText("Number"), "+1 (415) 555-0123");
    await user.selectOptions(within(dialog).getByLabelText("Answered by"), "ag1");
    await user.click(within(dialog).getByRole("button", { name: "Add number" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).not.toBeInTheDocument());
    expect(calls.find((c) => c.method === "POST" && c.url.endsWith("/phone-numbers"))!.body).toEqual({ number: "+14155550123", carrier: "twilio", label: null, agent_id: "ag1" });
    expect(await screen.findByText("+14155550123")).toBeInTheDocument();
  });

  it("shows carrier credentials only masked and sends new ones write-only", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents": agents,
      "GET /api/v1/phone-numbers": () => [],
      "GET /api/v1/org/carrier-credentials": () => [
        { carrier: "twilio", account_id_masked: "AC••••cdef", auth_token_masked: "••••••••", updated_at: "2024-05-01T10:00:00Z" },
      ],
      "PUT /api/v1/org/carrier-credentials/vobiz": () => ({ carrier: "vobiz", account_id_masked: "MA••••1234", auth_token_masked: "••••••••" }),
    });
    renderApp(<PhoneNumbersPage />, { route: "/numbers", path: "/numbers" });
    expect(await screen.findByTestId("twilio-account-masked")).toHaveTextContent("AC••••cdef");
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Set Vobiz credentials" }));
    await user.type(screen.getByLabelText("Auth ID"), "MA001234");
    const token = screen.getByLabelText("Auth token");
    expect(token).toHaveAttribute("type", "password");
    expect(token).toHaveAttribute("autocomplete", "new-password");
    await user.type(token, "s3cret-token");
    await user.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PUT")).toBe(true));
    expect(calls.find((c) => c.method === "PUT")!.body).toEqual({ account_id: "MA001234", auth_token: "s3cret-token" });
    await waitFor(() => expect(screen.queryByDisplayValue("s3cret-token")).not.toBeInTheDocument());
  });

  it("hides write actions from members", async () => {
    mockApi({ ...sessionRoutes({ ...ME, role: "member" }), "GET /api/v1/agents": agents, "GET /api/v1/phone-numbers": () => [{ id: "n1", number: "+14155550123", carrier: "twilio", agent_id: "ag1", created_at: "2024-05-01T10:00:00Z" }] });
    renderApp(<PhoneNumbersPage />, { route: "/numbers", path: "/numbers" });
    expect(await screen.findByText("+14155550123")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Add number" })).not.toBeInTheDocument();
    expect(screen.queryByText("Carrier credentials")).not.toBeInTheDocument();
  });
});

describe("settings", () => {
  it("shows a new API key exactly once", async () => {
    const keys: unknown[] = [];
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/org/api-keys": () => keys,
      "POST /api/v1/org/api-keys": () => {
        keys.push({ id: "k1", name: "CRM", prefix: "va_live_ab12", created_at: "2024-05-01T10:00:00Z" });
        return { id: "k1", name: "CRM", prefix: "va_live_ab12", created_at: "2024-05-01T10:00:00Z", key: "va_live_ab12_SECRETSECRET" };
      },
    });
    renderApp(<SettingsPage />, { route: "/settings?tab=api-keys", path: "/settings" });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Key name"), "CRM");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByTestId("one-time-secret")).toHaveTextContent("va_live_ab12_SECRETSECRET");
    expect(await screen.findByText("va_live_ab12…")).toBeInTheDocument();
  });

  it("invites a member and shows the single-use link", async () => {
    mockApi({
      ...sessionRoutes(),
      "GET /api/v1/org/members": () => [{ user_id: "u1", email: "ada@example.com", name: "Ada", role: "owner" }],
      "GET /api/v1/org/invitations": () => [],
      "POST /api/v1/org/invitations": (c) => ({ id: "i1", ...(c.body as object), created_at: "2024-05-01T10:00:00Z", expires_at: "2024-05-08T10:00:00Z", token: "tok123456789" }),
    });
    renderApp(<SettingsPage />, { route: "/settings", path: "/settings" });
    const user = userEvent.setup();
    expect(await screen.findByText("you")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Email"), "grace@example.com");
    await user.selectOptions(screen.getByLabelText("Role"), "admin");
    await user.click(screen.getByRole("button", { name: "Invite" }));
    expect(await screen.findByTestId("one-time-secret")).toHaveTextContent("/accept-invitation?token=tok123456789");
  });
});
