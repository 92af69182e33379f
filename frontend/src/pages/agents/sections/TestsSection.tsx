import { useState } from "react";
import { Link } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { agentsApi } from "../../../api/endpoints";
import type { AgentTestRun } from "../../../api/types";
import { Badge, Button, Card, Checkbox, EmptyState, ErrorState, InlineError, Spinner, TextArea } from "../../../components/ui";
import { fmtDateTime } from "../../../lib/format";

const POLL_MS = 2000;
const STATUS_TONE = { queued: "info", running: "info", passed: "good", failed: "bad" } as const;
const RESULT_MARK = { passed: "✓", failed: "✗", skipped: "–" } as const;

function inProgress(run: AgentTestRun) {
  return run.status === "queued" || run.status === "running";
}

/** Agent test suites (core/agent_tests.py): "Run tests" queues scenarios on the backend, which places each as a
 * simulated call against the current version; runs are listed newest first, polled while one is in progress. */
export function TestsSection({ agentId, currentVersion, savedScenarios = 0, unsavedEdits = false }: {
  agentId: string; currentVersion: number; savedScenarios?: number; unsavedEdits?: boolean;
}) {
  const queryClient = useQueryClient();
  const [suite, setSuite] = useState("");
  const [saveWithAgent, setSaveWithAgent] = useState(false);
  const runs = useQuery({
    queryKey: ["agents", agentId, "test-runs"],
    queryFn: () => agentsApi.testRuns(agentId),
    refetchInterval: (query) => (query.state.data?.some(inProgress) ? POLL_MS : false),
  });
  const start = useMutation({
    mutationFn: () => agentsApi.startTestRun(agentId, suite, saveWithAgent && !unsavedEdits),
    onSuccess: () => {
      // Saving the scenarios made a new version: the editor reloads the agent.
      void queryClient.invalidateQueries({ queryKey: ["agents", agentId] });
      setSaveWithAgent(false);
    },
  });
  const command = `voicectl test-agent SUITE.yaml --agent-id ${agentId} --token $TOKEN`;
  return (
    <>
      <Card title="Run tests">
        <p className="muted">
          Each scripted scenario runs as a simulated call against version {currentVersion}: the caller's lines are
          spoken by a voice unlike the agent's and the call is checked against what was recorded. Results are kept
          per version, so a change shows what it broke. Keypad lines (<code>keys</code>) are pressed once the agent's
          turn is over. To run a suite over the telephony simulator instead (μ-law phone audio, the carriers' keypad
          events): <code>{command}</code>.
        </p>
        <TextArea
          label="Scenarios (YAML)"
          rows={10}
          value={suite}
          onChange={(e) => setSuite(e.target.value)}
          spellCheck={false}
          placeholder={"scenarios:\n  - name: asks for the hours\n    caller:\n      - say: When are you open on Saturday?\n    expect:\n      - {kind: reply_contains, words: [saturday]}"}
          hint={`The format of data/agent-tests/*.yaml. Empty: the ${savedScenarios} scenario(s) saved with this agent.`}
        />
        <Checkbox
          label="Save these scenarios with the agent (a new version)"
          checked={saveWithAgent && !unsavedEdits}
          disabled={unsavedEdits || !suite.trim()}
          onChange={setSaveWithAgent}
          hint={unsavedEdits ? "Save or discard your other changes to the agent first." : undefined}
        />
        <Button variant="primary" busy={start.isPending} onClick={() => start.mutate()}>Run tests</Button>
        {start.isError && <InlineError error={start.error} />}
      </Card>
      <Card title="Test runs">
        {runs.isPending ? <Spinner label="Loading test runs…" /> : runs.isError ? (
          <ErrorState error={runs.error} onRetry={() => void runs.refetch()} />
        ) : runs.data.length === 0 ? (
          <EmptyState title="No test runs yet">Paste scenarios above and run them.</EmptyState>
        ) : (
          <ul className="plain-list" aria-label="Test runs">
            {runs.data.map((run) => <TestRunItem key={run.id} run={run} />)}
          </ul>
        )}
      </Card>
    </>
  );
}

function TestRunItem({ run }: { run: AgentTestRun }) {
  return (
    <li>
      <strong>v{run.version}</strong> <span className="muted small">{fmtDateTime(run.created_at)} · {run.suite}</span>{" "}
      <Badge tone={STATUS_TONE[run.status]}>{run.status}</Badge>{" "}
      <span className="small">
        {run.passed} passed, {run.failed} failed, {run.skipped} skipped
        {inProgress(run) && ` · ${run.results?.length ?? 0} of ${run.scenarios} done`}
      </span>
      {run.error && <div className="field-error">{run.error}</div>}
      <ul>
        {(run.results ?? []).map((r) => (
          <li key={r.name}>
            {RESULT_MARK[r.status]} {r.name} <span className="muted small">{r.status}</span>
            {r.call_id && <> · <Link to={`/calls/${r.call_id}`}>call</Link></>}
            {(r.failures ?? []).map((f) => <div key={f} className="muted small">{f}</div>)}
            {(r.transcript ?? []).length > 0 && (
              <details>
                <summary>Transcript</summary>
                {(r.transcript ?? []).map((line, i) => <div key={i} className="small">{line}</div>)}
              </details>
            )}
          </li>
        ))}
      </ul>
    </li>
  );
}
