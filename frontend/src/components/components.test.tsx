import { useState } from "react";
import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { BarChart, LineChart } from "./charts";
import { Button, Dialog, NumberField, Tabs } from "./ui";
import { fillDays } from "../pages/analytics/AnalyticsPage";
import { applyTranscript } from "../pages/testcall/TestCallPage";

describe("charts", () => {
  it("draws a bar per value, describes itself and reveals a data table", async () => {
    const { container } = render(
      <BarChart
        title="Calls per day"
        labels={["May 1", "May 2", "May 3"]}
        stacked
        series={[
          { name: "Answered", tone: "a", values: [3, 0, 5] },
          { name: "Missed", tone: "c", values: [1, 2, 0] },
        ]}
        summary="11 calls."
      />,
    );
    expect(screen.getByRole("img", { name: /Calls per day\. 11 calls\./ })).toBeInTheDocument();
    expect(container.querySelectorAll("rect.bar")).toHaveLength(6);
    await userEvent.click(screen.getByRole("button", { name: "Show data table" }));
    expect(screen.getByRole("row", { name: "May 3 5 0" })).toBeInTheDocument();
  });

  it("breaks lines where there is no data", () => {
    const { container } = render(
      <LineChart title="Latency" labels={["a", "b", "c", "d"]} series={[{ name: "p50", tone: "a", values: [400, null, 500, 450] }]} summary="" />,
    );
    expect(container.querySelectorAll("path")).toHaveLength(2);
    expect(container.querySelectorAll("circle")).toHaveLength(3);
  });

  it("fills missing days with zeros", () => {
    const until = new Date("2024-05-10T12:00:00Z");
    const days = fillDays([{ date: "2024-05-10", calls: 4, answered: 3, p50_ms: 500 }], 7, until);
    expect(days[0].date).toBe("2024-05-04");
    expect(days).toHaveLength(7);
    expect(days[6]).toMatchObject({ calls: 4, answered: 3 });
    expect(days[0]).toMatchObject({ calls: 0, p50_ms: null });
  });
});

describe("dialog", () => {
  function Harness() {
    const [open, setOpen] = useState(false);
    return (
      <>
        <Button onClick={() => setOpen(true)}>Open</Button>
        <Dialog title="Add a number" open={open} onClose={() => setOpen(false)} footer={<Button>Save</Button>}>
          <input aria-label="Number" />
        </Dialog>
      </>
    );
  }

  it("moves focus in, traps Tab, closes on Escape and returns focus", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    const opener = screen.getByRole("button", { name: "Open" });
    await user.click(opener);
    expect(screen.getByRole("dialog", { name: "Add a number" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Close dialog" })).toHaveFocus();
    await user.tab();
    expect(screen.getByLabelText("Number")).toHaveFocus();
    await user.tab();
    await user.tab();
    expect(screen.getByRole("button", { name: "Close dialog" })).toHaveFocus(); // wrapped
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    expect(opener).toHaveFocus();
  });
});

describe("tabs", () => {
  it("moves between tabs with the arrow keys", async () => {
    function T() {
      const [cur, setCur] = useState<"a" | "b">("a");
      return <Tabs label="Sections" current={cur} onChange={setCur} tabs={[{ id: "a", label: "One" }, { id: "b", label: "Two" }]} />;
    }
    render(<T />);
    const user = userEvent.setup();
    await user.click(screen.getByRole("tab", { name: "One" }));
    await user.keyboard("{ArrowRight}");
    expect(screen.getByRole("tab", { name: "Two" })).toHaveAttribute("aria-selected", "true");
    expect(screen.getByRole("tab", { name: "Two" })).toHaveFocus();
  });
});

describe("number field", () => {
  it("shows bounds errors from the model's limits", async () => {
    function N() {
      const [v, setV] = useState<number | null>(1);
      return <NumberField label="Speed" value={v} onValue={setV} min={0.5} max={2} />;
    }
    render(<N />);
    const user = userEvent.setup();
    const input = screen.getByLabelText("Speed");
    await user.clear(input);
    await user.type(input, "3");
    expect(input).toHaveAccessibleDescription("At most 2");
  });
});

describe("live transcript", () => {
  it("replaces interim text and settles it when final", () => {
    let id = 0;
    const next = () => ++id;
    let lines = applyTranscript([], { role: "caller", text: "I need", final: false }, next);
    lines = applyTranscript(lines, { role: "caller", text: "I need to reschedule", final: false }, next);
    expect(lines).toHaveLength(1);
    lines = applyTranscript(lines, { role: "caller", text: "I need to reschedule.", final: true }, next);
    lines = applyTranscript(lines, { role: "agent", text: "Sure.", final: true }, next);
    lines = applyTranscript(lines, { role: "caller", text: "Tomorrow", final: false }, next);
    expect(lines.map((l) => [l.role, l.text, l.final])).toEqual([
      ["caller", "I need to reschedule.", true],
      ["agent", "Sure.", true],
      ["caller", "Tomorrow", false],
    ]);
  });
});
