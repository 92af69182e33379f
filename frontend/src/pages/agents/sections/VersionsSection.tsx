import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { agentsApi, orgApi } from "../../../api/endpoints";
import type { AgentConfig } from "../../../api/types";
import { Badge, Button, Card, EmptyState, ErrorState, Spinner } from "../../../components/ui";
import { fmtDateTime } from "../../../lib/format";
import { flatDiff, getIn } from "../../../lib/objectPath";
import { withDefaults } from "../defaults";
import { DataTable } from "../../../components/DataTable";

function show(v: unknown): string {
  if (v === undefined || v === null || v === "") return "—";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 160)}…` : s;
}

export function VersionsSection({ agentId, currentVersion, editing, onRestore, readOnly }: {
  agentId: string;
  currentVersion: number;
  editing: AgentConfig;
  onRestore: (config: AgentConfig, version: number) => void;
  readOnly: boolean;
}) {
  const versions = useQuery({ queryKey: ["agents", agentId, "versions"], queryFn: () => agentsApi.versions(agentId) });
  const members = useQuery({ queryKey: ["members"], queryFn: orgApi.members, staleTime: 5 * 60_000 });
  // created_by is "user:<id>" or "api_key:<id>": show the member's name where we can.
  const who = (actor?: string | null) => {
    if (!actor) return "";
    const [kind, id] = actor.split(":");
    const m = members.data?.find((x) => x.user_id === id);
    return kind === "user" ? (m?.name || m?.email || "a former member") : kind === "api_key" ? "an API key" : actor;
  };
  const [selected, setSelected] = useState<number | null>(null);
  const detail = useQuery({
    queryKey: ["agents", agentId, "versions", selected],
    queryFn: () => agentsApi.version(agentId, selected!),
    enabled: selected != null,
  });

  if (versions.isPending) return <Spinner label="Loading versions…" />;
  if (versions.isError) return <ErrorState error={versions.error} onRetry={() => void versions.refetch()} />;
  const list = [...versions.data].sort((a, b) => b.version - a.version);
  if (!list.length) return <EmptyState title="No versions yet">Saving creates version 1.</EmptyState>;
  const old = detail.data?.config ? withDefaults(detail.data.config) : null;
  const diff = old ? flatDiff(old, withDefaults(editing)) : [];

  return (
    <div className="split">
      <Card title="Versions">
        <p className="muted small">Every save is a new version; calls record the version they used.</p>
        <ul className="version-list">
          {list.map((v) => (
            <li key={v.version}>
              <button
                type="button"
                className={`version-item${selected === v.version ? " selected" : ""}`}
                aria-pressed={selected === v.version}
                onClick={() => setSelected(v.version)}
              >
                <span>
                  <strong>v{v.version}</strong> {v.version === currentVersion && <Badge tone="good">current</Badge>}
                </span>
                <span className="muted small">
                  {fmtDateTime(v.created_at)}
                  {v.created_by ? ` · ${who(v.created_by)}` : ""}
                </span>
                {v.note && <span className="small">{v.note}</span>}
              </button>
            </li>
          ))}
        </ul>
      </Card>
      <Card title={selected ? `Version ${selected} compared with the editor` : "Compare"}>
        {selected == null ? (
          <p className="muted">Pick a version to see what differs from what is in the editor now.</p>
        ) : detail.isPending ? (
          <Spinner label="Loading version…" />
        ) : detail.isError ? (
          <ErrorState error={detail.error} />
        ) : diff.length === 0 ? (
          <p>Identical to the editor.</p>
        ) : (
          <>
            <DataTable caption="Differences" className="table-compact" columns={["Setting", `v${selected}`, "Editor"]}>
              {diff.map((path) => (
                <tr key={path}>
                  <th scope="row"><code>{path}</code></th>
                  <td className="diff-old">{show(getIn(old, path))}</td>
                  <td className="diff-new">{show(getIn(withDefaults(editing), path))}</td>
                </tr>
              ))}
            </DataTable>
            {!readOnly && (
              <Button onClick={() => old && onRestore(detail.data!.config!, selected)}>
                Load v{selected} into the editor
              </Button>
            )}
          </>
        )}
      </Card>
    </div>
  );
}
