/** The money side of analytics (GET /analytics/costs): total, cost per minute, per day, per agent, per campaign. */
import { useId } from "react";
import type { CostAnalytics } from "../../api/types";
import { BarChart, RankedBars } from "../../components/charts";
import { Card } from "../../components/ui";
import { fmtDate, fmtMoney } from "../../lib/format";
import { utcDay } from "./days";

/** Every UTC day of the range, zero where nothing was spent (the API lists only days with costed calls). */
export function fillCostDays(perDay: Record<string, number>, days: number, until = new Date()): { date: string; cost: number }[] {
  return Array.from({ length: days }, (_, k) => {
    const date = utcDay(new Date(until.getTime() - (days - 1 - k) * 86_400_000));
    return { date, cost: perDay[date] ?? 0 };
  });
}

function named(costs: Record<string, number>, names: Map<string, string>, deleted: string) {
  return Object.entries(costs).map(([id, value]) => ({ label: names.get(id) ?? `${deleted} ${id.slice(0, 8)}`, value }));
}

export function CostCharts({ costs, days, agentNames, campaignNames }: {
  costs: CostAnalytics;
  days: number;
  agentNames: Map<string, string>;
  campaignNames: Map<string, string>;
}) {
  const headingId = useId();
  const money = (v: number) => fmtMoney(v, costs.currency);
  const filled = fillCostDays(costs.per_day, days, new Date(`${costs.until}T12:00:00Z`));
  const dearest = filled.reduce((a, d) => (d.cost > a.cost ? d : a), filled[0] ?? { date: "", cost: 0 });
  return (
    <section aria-labelledby={headingId} className="cost-section">
      <h2 id={headingId}>Cost</h2>
      <div className="kpis">
        <Kpi label={`Total (${costs.currency})`} value={money(costs.total)} />
        <Kpi label="Cost per minute" value={money(costs.cost_per_minute ?? Number.NaN)} />
      </div>
      {costs.total === 0 ? (
        <p className="muted">No costed calls in this range (a call is costed when it ends, from the price book).</p>
      ) : (
        <div className="chart-grid">
          <Card className="span-2">
            <BarChart
              title="Cost per day"
              labels={filled.map((d) => fmtDate(d.date))}
              series={[{ name: "Cost", tone: "a", values: filled.map((d) => d.cost) }]}
              format={money}
              summary={`${money(costs.total)} over ${days} days; highest ${money(dearest.cost)} on ${fmtDate(dearest.date)}.`}
            />
          </Card>
          <Card>
            <RankedBars title="Cost per agent" items={named(costs.per_agent, agentNames, "Deleted agent")} format={money}
              summary={`${Object.keys(costs.per_agent).length} agents with costed calls.`} />
          </Card>
          <Card>
            <RankedBars title="Cost per campaign" items={named(costs.per_campaign, campaignNames, "Campaign")} format={money}
              summary={`${Object.keys(costs.per_campaign).length} campaigns with costed calls.`} />
          </Card>
        </div>
      )}
    </section>
  );
}

export function Kpi({ label, value }: { label: string; value: string }) {
  return (
    <div className="kpi">
      <div className="kpi-value">{value}</div>
      <div className="kpi-label">{label}</div>
    </div>
  );
}
