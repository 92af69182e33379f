import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { orgApi } from "../../api/endpoints";
import type { Invitation, Role } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, ConfirmButton, EmptyState, ErrorState, InlineError, OneTimeSecret, SelectField, Spinner,
  TextField,
} from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { DataTable } from "../../components/DataTable";

const ROLES: { id: Role; label: string; help: string }[] = [
  { id: "member", label: "Member", help: "views agents, calls and analytics; runs test calls" },
  { id: "admin", label: "Admin", help: "also edits agents, numbers, campaigns, keys and webhooks" },
  { id: "owner", label: "Owner", help: "also manages members and owners" },
];

export function inviteLink(inv: Invitation): string | null {
  if (inv.accept_url) return inv.accept_url;
  if (inv.token) return `${window.location.origin}/accept-invitation?token=${encodeURIComponent(inv.token)}`;
  return null;
}

export function MembersTab() {
  const { me, can } = useAuth();
  const notify = useToast();
  const qc = useQueryClient();
  const members = useQuery({ queryKey: ["members"], queryFn: orgApi.members });
  const owner = can("owner");
  const setRole = useMutation({
    mutationFn: ({ id, role }: { id: string; role: Role }) => orgApi.setRole(id, role),
    onSuccess: (m) => {
      qc.invalidateQueries({ queryKey: ["members"] });
      notify(`${m.email} is now ${m.role}`);
    },
    onError: (e) => notify(`Couldn't change the role: ${e instanceof Error ? e.message : e}`, "bad"),
  });
  const remove = useMutation({
    mutationFn: (id: string) => orgApi.removeMember(id),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ["members"] });
      notify("Member removed");
    },
    onError: (e) => notify(`Couldn't remove: ${e instanceof Error ? e.message : e}`, "bad"),
  });

  return (
    <>
      <Card title="Members">
        {members.isPending ? (
          <Spinner label="Loading members…" />
        ) : members.isError ? (
          <ErrorState error={members.error} onRetry={() => void members.refetch()} />
        ) : (
          <DataTable caption="Members" columns={["Name", "Email", "Role", "Joined", owner && { hidden: "Actions" }]}>
            {members.data.map((m) => {
              const self = m.user_id === me?.user?.id;
              return (
                <tr key={m.user_id}>
                  <td>{m.name || "—"} {self && <Badge tone="info">you</Badge>}</td>
                  <td>{m.email}</td>
                  <td>
                    {owner && !self ? (
                      <SelectField
                        label={<span className="sr-only">Role of {m.email}</span>}
                        className="field-inline"
                        value={m.role}
                        disabled={setRole.isPending}
                        onChange={(e) => setRole.mutate({ id: m.user_id, role: e.target.value as Role })}
                      >
                        {ROLES.map((r) => <option key={r.id} value={r.id}>{r.label}</option>)}
                      </SelectField>
                    ) : (
                      <Badge>{m.role}</Badge>
                    )}
                  </td>
                  <td>{fmtDateTime(m.joined_at)}</td>
                  {owner && (
                    <td className="row-actions">
                      {!self && (
                        <ConfirmButton onConfirm={() => remove.mutate(m.user_id)} label={`Remove ${m.email}`} confirmLabel="Remove">
                          Remove
                        </ConfirmButton>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </DataTable>
        )}
        <ul className="muted small role-help">
          {ROLES.map((r) => <li key={r.id}><strong>{r.label}</strong>: {r.help}</li>)}
        </ul>
      </Card>
      {can("admin") && <Invitations />}
    </>
  );
}

function Invitations() {
  const { can } = useAuth();
  const qc = useQueryClient();
  const notify = useToast();
  const invitations = useQuery({ queryKey: ["invitations"], queryFn: orgApi.invitations });
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [created, setCreated] = useState<Invitation | null>(null);
  const invite = useMutation({
    mutationFn: () => orgApi.invite(email.trim(), role),
    onSuccess: (inv) => {
      setCreated(inv);
      setEmail("");
      qc.invalidateQueries({ queryKey: ["invitations"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => orgApi.revokeInvitation(id),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ["invitations"] });
      notify("Invitation revoked");
    },
  });
  const valid = /^\S+@\S+\.\S+$/.test(email.trim());
  const link = created ? inviteLink(created) : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    if (valid) invite.mutate();
  }
  const pending = (invitations.data ?? []).filter((i) => !i.accepted_at);

  return (
    <Card title="Invitations">
      <form className="inline-form" onSubmit={submit}>
        <TextField label="Email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} className="grow" autoComplete="off" />
        <SelectField label="Role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.filter((r) => r.id !== "owner" || can("owner")).map((r) => <option key={r.id} value={r.id}>{r.label}</option>)}
        </SelectField>
        <Button type="submit" variant="primary" busy={invite.isPending} disabled={!valid}>Invite</Button>
      </form>
      <InlineError error={invite.error} />
      {created && link && (
        <OneTimeSecret label={`Invitation link for ${created.email} (single use, expires ${fmtDateTime(created.expires_at)})`} value={link} />
      )}
      {invitations.isPending ? (
        <Spinner label="Loading invitations…" />
      ) : invitations.isError ? (
        <ErrorState error={invitations.error} onRetry={() => void invitations.refetch()} />
      ) : pending.length === 0 ? (
        <EmptyState title="No pending invitations" />
      ) : (
        <ul className="plain-list">
          {pending.map((i) => (
            <li key={i.id} className="list-row">
              <span>{i.email} <Badge>{i.role}</Badge></span>
              <span className="muted small">expires {fmtDateTime(i.expires_at)}</span>
              <ConfirmButton onConfirm={() => revoke.mutate(i.id)} label={`Revoke invitation for ${i.email}`} confirmLabel="Revoke">
                Revoke
              </ConfirmButton>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
