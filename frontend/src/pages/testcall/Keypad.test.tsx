import { afterEach, describe, expect, it, vi } from "vitest";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { BrowserCall } from "../../lib/browserCall";
import { Keypad } from "./Keypad";

afterEach(() => vi.unstubAllGlobals());

describe("test call keypad", () => {
  it("presses keys by click and by keyboard, and lists what was sent", async () => {
    const sent: string[] = [];
    render(<Keypad onPress={(key) => (sent.push(key), true)} />);
    expect(screen.getAllByRole("button")).toHaveLength(12);
    await userEvent.click(screen.getByRole("button", { name: "Key 4" }));
    await userEvent.click(screen.getByRole("button", { name: "Key #" }));
    screen.getByRole("button", { name: "Key 1" }).focus();
    await userEvent.keyboard("7*x");
    expect(sent).toEqual(["4", "#", "7", "*"]);
    expect(screen.getByText("Pressed: 4#7*")).toBeInTheDocument();
  });

  it("shows nothing as pressed when the call did not take the key", async () => {
    render(<Keypad onPress={() => false} />);
    await userEvent.click(screen.getByRole("button", { name: "Key 5" }));
    expect(screen.getByText("No keys pressed")).toBeInTheDocument();
    expect(screen.queryByText("the agent is waiting for keys")).toBeNull();
  });

  it("says when the agent is waiting for keys", () => {
    render(<Keypad onPress={() => true} waiting />);
    expect(screen.getByText("the agent is waiting for keys")).toBeInTheDocument();
  });
});

describe("BrowserCall.sendDigit", () => {
  it("sends a keypress as the socket's dtmf message, and refuses what is not a key or with no open socket", () => {
    const frames: string[] = [];
    class FakeSocket {
      static OPEN = 1;
      readyState = 1;
      send(data: string) {
        frames.push(data);
      }
    }
    vi.stubGlobal("WebSocket", FakeSocket);
    const call = new BrowserCall("ws://voice/v1/browser?token=t");
    expect(call.sendDigit("5")).toBe(false); // not started: no socket
    (call as unknown as { ws: FakeSocket }).ws = new FakeSocket();
    expect(call.sendDigit("5")).toBe(true);
    expect(call.sendDigit("#")).toBe(true);
    expect(call.sendDigit("A")).toBe(false);
    expect(call.sendDigit("12")).toBe(false);
    expect(frames.map((f) => JSON.parse(f))).toEqual([{ type: "dtmf", digit: "5" }, { type: "dtmf", digit: "#" }]);
  });

  it("reports the server's keypad event (the agent waits for keys, then no longer)", () => {
    const seen: boolean[] = [];
    const call = new BrowserCall("ws://voice/v1/browser?token=t", { onKeypad: (w) => seen.push(w) });
    const handle = (call as unknown as { handleEvent: (text: string) => void }).handleEvent.bind(call);
    handle(JSON.stringify({ type: "keypad", waiting: true }));
    handle(JSON.stringify({ type: "keypad", waiting: false }));
    handle(JSON.stringify({ type: "keypad" }));
    expect(seen).toEqual([true, false, false]);
  });
});
