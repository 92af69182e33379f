import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import { json, mockApi, renderApp, sessionRoutes } from "../../test/utils";
import SettingsPage from "./SettingsPage";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

describe("secrets tab", () => {
  it("sends a secret write-only and lists only its name, mask and version", async () => {
    const stored: { name: string; value_masked: string; version: number; created_at: string; updated_at: string }[] = [];
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/org/secrets": () => stored,
      "PUT /api/v1/org/secrets/crm-headers": () => {
        const s = { name: "crm-headers", value_masked: "••••••••", version: 1, created_at: "2024-05-01T10:00:00Z",
                    updated_at: "2024-05-01T10:00:00Z" };
        stored.push(s);
        return json(s, 201);
      },
    });
    renderApp(<SettingsPage />, { route: "/settings?tab=secrets", path: "/settings" });
    expect(await screen.findByText("No secrets")).toBeInTheDocument();
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Name"), "crm-headers");
    await user.type(screen.getByLabelText("Value"), "super-secret-token");
    await user.click(screen.getByRole("button", { name: "Save secret" }));
    await waitFor(() => expect(screen.getByText("crm-headers")).toBeInTheDocument());
    expect(calls.find((c) => c.method === "PUT")!.body).toEqual({ value: "super-secret-token" });
    expect(screen.queryByText(/super-secret-token/)).not.toBeInTheDocument();
    expect(screen.getByLabelText("Value")).toHaveValue("");
  });
});
