import { useQuery } from "@tanstack/react-query";
import { agentsApi } from "../../../api/endpoints";
import { Badge, Card, EmptyState, ErrorState, Spinner } from "../../../components/ui";
import { fmtDateTime } from "../../../lib/format";

/** Agent test suite runs (core/agent_tests.py), newest first, each with the agent version it ran against. */
export function TestsSection({ agentId, currentVersion }: { agentId: string; currentVersion: number }) {
  const runs = useQuery({ queryKey: ["agents", agentId, "test-runs"], queryFn: () => agentsApi.testRuns(agentId) });
  const command = `voicectl test-agent data/agent-tests/SUITE.yaml --agent-id ${agentId} --token $TOKEN`;
  return (
    <Card title="Test runs">
      <p className="muted">
        Scripted scenarios run as simulated phone calls against version {currentVersion}; results are kept per
        version, so a change shows what it broke. Run a suite with <code>{command}</code>.
      </p>
      {runs.isPending ? <Spinner label="Loading test runs…" /> : runs.isError ? (
        <ErrorState error={runs.error} onRetry={() => void runs.refetch()} />
      ) : runs.data.length === 0 ? (
        <EmptyState title="No test runs yet">Run a suite with the command above.</EmptyState>
      ) : (
        <ul className="plain-list" aria-label="Test runs">
          {runs.data.map((run) => (
            <li key={run.id}>
              <strong>v{run.version}</strong> <span className="muted small">{fmtDateTime(run.created_at)} · {run.suite}</span>{" "}
              <Badge tone={run.failed ? "bad" : "good"}>{run.passed} passed, {run.failed} failed, {run.skipped} skipped</Badge>
              <ul>
                {run.results.map((r) => (
                  <li key={r.name}>
                    {r.status === "passed" ? "✓" : r.status === "failed" ? "✗" : "–"} {r.name}
                    {(r.failures ?? []).map((f) => <div key={f} className="muted small">{f}</div>)}
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
