import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { agentsApi, numbersApi } from "../../api/endpoints";
import { useAuth } from "../../auth/AuthContext";
import { Badge, EmptyState, ErrorState, PageHeader, Spinner } from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { DataTable } from "../../components/DataTable";

export default function AgentsListPage() {
  const { can } = useAuth();
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const numbers = useQuery({ queryKey: ["phone-numbers"], queryFn: numbersApi.list });
  const newButton = can("admin") ? <Link className="btn btn-primary" to="/agents/new">New agent</Link> : null;

  return (
    <>
      <PageHeader title="Agents" subtitle="What each agent says, how it sounds and what it can do." actions={newButton} />
      {agents.isPending ? (
        <Spinner label="Loading agents…" />
      ) : agents.isError ? (
        <ErrorState error={agents.error} onRetry={() => void agents.refetch()} />
      ) : agents.data.length === 0 ? (
        <EmptyState title="No agents yet" action={newButton}>
          An agent is a prompt, a voice and its tools. Create one, then link a phone number to it.
        </EmptyState>
      ) : (
        <DataTable caption="Agents" columns={["Name", "Version", "Numbers", "Updated"]}>
          {agents.data.map((a) => {
            const linked = (numbers.data ?? []).filter((n) => n.agent_id === a.id);
            return (
              <tr key={a.id}>
                <td>
                  <Link to={`/agents/${a.id}`} className="strong-link">{a.name}</Link>
                  {a.description && <div className="muted small">{a.description}</div>}
                </td>
                <td><Badge>v{a.version}</Badge></td>
                <td>
                  {linked.length ? linked.map((n) => <span key={n.id} className="mono nowrap">{n.number} </span>) : <span className="muted">None</span>}
                </td>
                <td>{fmtDateTime(a.updated_at)}</td>
              </tr>
            );
          })}
        </DataTable>
      )}
    </>
  );
}
