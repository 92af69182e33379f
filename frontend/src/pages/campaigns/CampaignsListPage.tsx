import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { agentsApi } from "../../api/endpoints";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import { Badge, Button, Card, EmptyState, ErrorState, InlineError, NumberField, PageHeader, routeMissing, Spinner } from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { campaignsApi, type CampaignStatus } from "./api";
import { DataTable } from "../../components/DataTable";

export function statusTone(s: CampaignStatus): "good" | "warn" | "bad" | "info" | "neutral" {
  return s === "running" ? "info" : s === "completed" ? "good" : s === "paused" ? "warn" : s === "canceled" ? "bad" : "neutral";
}

export default function CampaignsListPage() {
  const { can } = useAuth();
  const campaigns = useQuery({ queryKey: ["campaigns"], queryFn: campaignsApi.list, refetchInterval: 10_000 });
  const agents = useQuery({ queryKey: ["agents"], queryFn: agentsApi.list });
  const newBtn = can("admin") ? <Link to="/campaigns/new" className="btn btn-primary">New campaign</Link> : null;
  const unavailable = routeMissing(campaigns.error);

  return (
    <>
      <PageHeader title="Campaigns" subtitle="Outbound calling from a contact list, inside calling hours and caps." actions={unavailable ? null : newBtn} />
      {campaigns.isPending ? (
        <Spinner label="Loading campaigns…" />
      ) : unavailable ? (
        <EmptyState title="Campaigns aren't available on this server yet">The campaign dialer has not been deployed with this backend.</EmptyState>
      ) : campaigns.isError ? (
        <ErrorState error={campaigns.error} onRetry={() => void campaigns.refetch()} />
      ) : campaigns.data.length === 0 ? (
        <EmptyState title="No campaigns yet" action={newBtn}>Upload a CSV of contacts and an agent calls them.</EmptyState>
      ) : (
        <DataTable caption="Campaigns" columns={["Name", "Agent", "Status", "Contacts", "Created"]}>
          {campaigns.data.map((c) => (
            <tr key={c.id}>
              <td><Link to={`/campaigns/${c.id}`} className="strong-link">{c.name}</Link></td>
              <td>{agents.data?.find((a) => a.id === c.agent_id)?.name ?? "—"}</td>
              <td><Badge tone={statusTone(c.status)}>{c.status}</Badge></td>
              <td>{(c.contact_count ?? 0).toLocaleString()}</td>
              <td>{fmtDateTime(c.created_at)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {!unavailable && <OrgCapCard admin={can("admin")} />}
    </>
  );
}

/** The organisation-wide cap on live campaign calls, across every campaign and dialer. */
function OrgCapCard({ admin }: { admin: boolean }) {
  const qc = useQueryClient();
  const notify = useToast();
  const cap = useQuery({ queryKey: ["campaign-settings"], queryFn: campaignsApi.orgSettings });
  const [value, setValue] = useState<number | null>(null);
  useEffect(() => {
    if (cap.data) setValue(cap.data.max_concurrent_calls);
  }, [cap.data]);
  const save = useMutation({
    mutationFn: () => campaignsApi.setOrgSettings({ max_concurrent_calls: value ?? 1 }),
    onSuccess: (d) => {
      qc.setQueryData(["campaign-settings"], d);
      notify(`At most ${d.max_concurrent_calls} campaign calls at once, across all campaigns`);
    },
  });
  if (cap.isPending || cap.isError) return null;
  return (
    <Card title="Organisation-wide limit">
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (value && value >= 1) save.mutate();
        }}
      >
        <NumberField
          label="Live campaign calls at once, all campaigns together"
          value={value}
          onValue={setValue}
          min={1}
          max={10000}
          step={1}
          readOnly={!admin}
        />
        {admin && (
          <Button type="submit" busy={save.isPending} disabled={!value || value === cap.data.max_concurrent_calls}>
            Save
          </Button>
        )}
      </form>
      <InlineError error={save.error} />
    </Card>
  );
}
