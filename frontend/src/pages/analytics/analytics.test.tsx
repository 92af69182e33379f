import { afterEach, describe, expect, it, vi } from "vitest";
import { render, screen, within } from "@testing-library/react";
import { tokens } from "../../api/http";
import type { CostAnalytics } from "../../api/types";
import { mockApi, renderApp, sessionRoutes } from "../../test/utils";
import AnalyticsPage from "./AnalyticsPage";
import { CostCharts, fillCostDays } from "./CostCharts";

afterEach(() => {
  tokens.clear();
  vi.unstubAllGlobals();
});

const COSTS: CostAnalytics = {
  currency: "USD",
  since: "2024-05-04",
  until: "2024-05-10",
  total: 3.5,
  cost_per_minute: 0.0875,
  per_day: { "2024-05-08": 1.25, "2024-05-10": 2.25 },
  per_agent: { ag1: 3.0, gone1234567: 0.5 },
  per_campaign: { cp1: 2.0 },
};

describe("cost charts", () => {
  it("fills the days without spend with zeros", () => {
    const days = fillCostDays(COSTS.per_day, 7, new Date("2024-05-10T12:00:00Z"));
    expect(days.map((d) => d.date)).toEqual(["2024-05-04", "2024-05-05", "2024-05-06", "2024-05-07", "2024-05-08", "2024-05-09", "2024-05-10"]);
    expect(days.map((d) => d.cost)).toEqual([0, 0, 0, 0, 1.25, 0, 2.25]);
  });

  it("shows the total, cost per minute, a bar per day and ranked agents and campaigns by name", () => {
    const { container } = render(
      <CostCharts costs={COSTS} days={7} agentNames={new Map([["ag1", "Dental desk"]])} campaignNames={new Map([["cp1", "May reminders"]])} />,
    );
    expect(screen.getByText("$3.50")).toBeInTheDocument();
    expect(screen.getByText("Cost per minute").previousSibling).toHaveTextContent("$0.0875");
    expect(screen.getByRole("img", { name: /Cost per day\. \$3\.50 over 7 days; highest \$2\.25/ })).toBeInTheDocument();
    expect(container.querySelectorAll("rect.bar")).toHaveLength(7);
    const agents = within(screen.getByRole("figure", { name: "Cost per agent" })).getAllByRole("listitem");
    expect(agents.map((li) => li.textContent)).toEqual(["Dental desk$3.00", "Deleted agent gone1234$0.50"]);
    const campaigns = within(screen.getByRole("figure", { name: "Cost per campaign" })).getAllByRole("listitem");
    expect(campaigns.map((li) => li.textContent)).toEqual(["May reminders$2.00"]);
  });

  it("says so when nothing was costed", () => {
    render(<CostCharts costs={{ ...COSTS, total: 0, cost_per_minute: null, per_day: {}, per_agent: {}, per_campaign: {} }}
      days={7} agentNames={new Map()} campaignNames={new Map()} />);
    expect(screen.getByText(/No costed calls in this range/)).toBeInTheDocument();
    expect(screen.getByText("Cost per minute").previousSibling).toHaveTextContent("—");
  });

  it("the analytics page asks the costs API for its range and charts it", async () => {
    const { calls } = mockApi({
      ...sessionRoutes(),
      "GET /api/v1/agents": () => [{ id: "ag1", name: "Dental desk" }],
      "GET /api/v1/campaigns": () => [{ id: "cp1", name: "May reminders" }],
      "GET /api/v1/analytics/summary": () => ({
        since: "2024-05-04", until: "2024-05-10", total_calls: 0, answered_calls: 0, answer_rate: 0, avg_duration_s: 0,
        ended_calls: 0, inbound_calls: 0, outbound_calls: 0, per_day: [], latency_samples: 0, usage: {},
      }),
      "GET /api/v1/analytics/costs": () => COSTS,
    });
    renderApp(<AnalyticsPage />);
    expect(await screen.findByRole("figure", { name: "Cost per campaign" })).toHaveTextContent("May reminders");
    const request = calls.find((c) => c.url.includes("/analytics/costs"))!;
    expect(request.url).toMatch(/since=\d{4}-\d{2}-\d{2}&until=\d{4}-\d{2}-\d{2}/);
  });
});
