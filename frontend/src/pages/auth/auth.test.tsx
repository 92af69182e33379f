import { afterEach, describe, expect, it, vi } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { tokens } from "../../api/http";
import { json, ME, mockApi, renderApp } from "../../test/utils";
import { LoginPage } from "./LoginPage";
import { RegisterPage } from "./RegisterPage";
import { AcceptInvitationPage } from "./AcceptInvitationPage";
import { useAuth } from "../../auth/AuthContext";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

function Probe() {
  const { status, me } = useAuth();
  return <div data-testid="probe">{status}:{me?.org.name ?? ""}</div>;
}

const signedOut = { "POST /api/v1/auth/refresh": () => json({ error: { code: "unauthorized", message: "no session" } }, 401) };

describe("login", () => {
  it("signs in and loads who we are", async () => {
    const { calls } = mockApi({
      ...signedOut,
      "POST /api/v1/auth/login": () => ({ access_token: "at", refresh_token: "rt", expires_in: 900 }),
      "GET /api/v1/auth/me": () => ME,
    });
    renderApp(<><LoginPage /><Probe /></>);
    await waitFor(() => expect(screen.getByTestId("probe")).toHaveTextContent("signed_out"));
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "correct-horse-battery");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(screen.getByTestId("probe")).toHaveTextContent("signed_in:Acme"));
    expect(calls.find((c) => c.url.endsWith("/auth/login"))!.body).toEqual({ email: "ada@example.com", password: "correct-horse-battery" });
    expect(tokens.access).toBe("at");
  });

  it("says when the password is wrong", async () => {
    mockApi({ ...signedOut, "POST /api/v1/auth/login": () => json({ error: { code: "unauthorized", message: "Invalid credentials" } }, 401) });
    renderApp(<LoginPage />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "nope");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Email or password is wrong.");
  });
});

describe("register", () => {
  it("validates fields next to their labels before sending", async () => {
    const { calls } = mockApi(signedOut);
    renderApp(<RegisterPage />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Email"), "not-an-email");
    await user.type(screen.getByLabelText("Password"), "short");
    await user.click(screen.getByRole("button", { name: "Create account" }));
    expect(screen.getByLabelText("Email")).toHaveAccessibleDescription("Enter a valid email address");
    expect(screen.getByLabelText("Password")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Your name")).toHaveAccessibleDescription("Enter your name");
    expect(calls.some((c) => c.url.endsWith("/auth/register"))).toBe(false);
  });

  it("shows the server's field errors", async () => {
    mockApi({
      ...signedOut,
      "POST /api/v1/auth/register": () =>
        json({ error: { code: "validation_error", message: "bad", details: [{ path: "body.password", message: "too common" }] } }, 422),
    });
    renderApp(<RegisterPage />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Your name"), "Ada");
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "password1234");
    await user.type(screen.getByLabelText("Organisation name"), "Acme");
    await user.click(screen.getByRole("button", { name: "Create account" }));
    await waitFor(() => expect(screen.getByLabelText("Password")).toHaveAccessibleDescription(/too common/));
  });
});

describe("accept invitation", () => {
  it("uses the token from the link", async () => {
    const { calls } = mockApi({
      ...signedOut,
      "POST /api/v1/auth/invitations/accept": () => ({ access_token: "at", refresh_token: "rt", expires_in: 900 }),
      "GET /api/v1/auth/me": () => ME,
    });
    renderApp(<><AcceptInvitationPage /><Probe /></>, { route: "/invitations/accept?token=tok-1234567890", path: "/invitations/accept" });
    const user = userEvent.setup();
    expect(screen.queryByLabelText("Invitation code")).not.toBeInTheDocument();
    await user.type(screen.getByLabelText("Your name"), "Grace");
    await user.type(screen.getByLabelText("Choose a password"), "a-long-password");
    await user.click(screen.getByRole("button", { name: "Accept invitation" }));
    await waitFor(() => expect(screen.getByTestId("probe")).toHaveTextContent("signed_in"));
    expect(calls.find((c) => c.url.endsWith("/accept"))!.body).toEqual({ token: "tok-1234567890", name: "Grace", password: "a-long-password" });
  });
});
