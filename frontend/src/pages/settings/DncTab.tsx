import { useRef, useState, type FormEvent } from "react";
import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { ApiError } from "../../api/http";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, ConfirmButton, EmptyState, ErrorState, InlineError, routeMissing, Spinner, TextField,
} from "../../components/ui";
import { fmtDateTime } from "../../lib/format";
import { dncApi, rowErrorsOf, type DncEntry, type ImportReport } from "../campaigns/api";
import { DataTable } from "../../components/DataTable";

/** The organisation's do-not-call list. Anyone may add numbers (restricting calls is always safe); admins remove. */
export function DncTab() {
  const { can } = useAuth();
  const admin = can("admin");
  const qc = useQueryClient();
  const notify = useToast();
  const list = useInfiniteQuery({
    queryKey: ["dnc"],
    queryFn: ({ pageParam }) => dncApi.list(pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
  const [filter, setFilter] = useState("");
  const [number, setNumber] = useState("");
  const [reason, setReason] = useState("");
  const [lookup, setLookup] = useState<{ phone: string; entry: DncEntry | null } | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const [importResult, setImportResult] = useState<ImportReport | null>(null);

  const add = useMutation({
    mutationFn: () => dncApi.add(number.trim(), reason.trim() || undefined),
    onSuccess: (e) => {
      setNumber("");
      setReason("");
      setLookup(null);
      qc.invalidateQueries({ queryKey: ["dnc"] });
      notify(`${e.phone} will never be dialled`);
    },
  });
  const check = useMutation({
    mutationFn: async () => {
      try {
        return { phone: number.trim(), entry: await dncApi.get(number.trim()) };
      } catch (e) {
        if (e instanceof ApiError && e.status === 404 && !routeMissing(e)) return { phone: number.trim(), entry: null };
        throw e;
      }
    },
    onSuccess: setLookup,
  });
  const remove = useMutation({
    mutationFn: (phone: string) => dncApi.remove(phone),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["dnc"] }),
    onError: (e) => notify(`Couldn't remove: ${e instanceof Error ? e.message : e}`, "bad"),
  });
  const importCsv = useMutation({
    mutationFn: (f: File) => dncApi.importCsv(f),
    onSuccess: (r) => {
      setImportResult(r);
      qc.invalidateQueries({ queryKey: ["dnc"] });
    },
    onSettled: () => {
      if (fileRef.current) fileRef.current.value = "";
    },
  });
  const rejected = rowErrorsOf(importCsv.error);
  const looksValid = number.trim().replace(/[\s()-]/g, "").length >= 7;

  function submit(e: FormEvent) {
    e.preventDefault();
    if (looksValid) add.mutate();
  }

  if (routeMissing(list.error)) {
    return (
      <EmptyState title="The do-not-call list isn't available on this server yet">
        It comes with the campaign dialer. Once deployed, numbers here are checked right before every campaign call.
      </EmptyState>
    );
  }
  const entries = (list.data?.pages.flatMap((p) => p.items) ?? []).filter((d) => !filter.trim() || d.phone.includes(filter.replace(/[\s()-]/g, "")));

  return (
    <>
      <Card title="Add to the do-not-call list">
        <p className="muted">Checked by the dialer right before every campaign call, for the whole organisation.</p>
        <form className="inline-form" onSubmit={submit} noValidate>
          <TextField
            label="Number"
            type="tel"
            value={number}
            onChange={(e) => {
              setNumber(e.target.value);
              setLookup(null);
            }}
            placeholder="+14155550123"
            hint="E.164, or a US number without +1."
          />
          <TextField label="Reason (optional)" value={reason} onChange={(e) => setReason(e.target.value)} className="grow" maxLength={200} />
          <Button onClick={() => check.mutate()} disabled={!looksValid} busy={check.isPending}>Check</Button>
          <Button type="submit" variant="primary" busy={add.isPending} disabled={!looksValid}>Add</Button>
        </form>
        {lookup && (
          <p role="status">
            <span className="mono">{lookup.phone}</span>{" "}
            {lookup.entry ? <><Badge tone="bad">listed</Badge> {lookup.entry.reason && <span className="muted">({lookup.entry.reason})</span>}</> : <Badge tone="good">not listed</Badge>}
          </p>
        )}
        <InlineError error={add.error ?? check.error} />
        <div className="file-row">
          <label htmlFor="dnc-file">Import a CSV (a <code>phone</code> column, optional <code>reason</code>)</label>
          <input id="dnc-file" ref={fileRef} type="file" accept=".csv,text/csv" onChange={(e) => e.target.files?.[0] && importCsv.mutate(e.target.files[0])} />
          {importCsv.isPending && <Spinner label="Importing…" />}
        </div>
        {importResult && !importCsv.error && (
          <div role="status" className="import-result">
            Added {importResult.imported ?? 0} number{importResult.imported === 1 ? "" : "s"}
            {importResult.already_present ? ` (${importResult.already_present} were already listed)` : ""}.
          </div>
        )}
        {rejected ? (
          <div role="alert" className="import-result">
            Nothing was imported: {rejected.total} line{rejected.total === 1 ? " has" : "s have"} problems. Fix them and upload again.
            <ul className="row-errors">
              {rejected.errors.slice(0, 50).map((f, i) => <li key={i}>Line {f.row}{f.column ? ` (${f.column})` : ""}: {f.message}</li>)}
            </ul>
          </div>
        ) : (
          <InlineError error={importCsv.error} />
        )}
      </Card>
      <Card title="Do-not-call numbers">
        <TextField label="Filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="+1415" />
        {list.isPending ? (
          <Spinner label="Loading…" />
        ) : list.isError ? (
          <ErrorState error={list.error} onRetry={() => void list.refetch()} />
        ) : entries.length === 0 ? (
          <EmptyState title={filter ? "No matching numbers loaded" : "The list is empty"} />
        ) : (
          <>
            <DataTable caption="Do-not-call numbers" columns={["Number", "Reason", "Source", "Added", admin && { hidden: "Actions" }]}>
              {entries.map((d) => (
                <tr key={d.phone}>
                  <td className="mono">{d.phone}</td>
                  <td>{d.reason || "—"}</td>
                  <td>{d.source === "csv" ? "CSV import" : "added by hand"}</td>
                  <td>{fmtDateTime(d.created_at)}</td>
                  {admin && (
                    <td className="row-actions">
                      <ConfirmButton onConfirm={() => remove.mutate(d.phone)} label={`Remove ${d.phone}`} confirmLabel="Remove">Remove</ConfirmButton>
                    </td>
                  )}
                </tr>
              ))}
            </DataTable>
            {list.hasNextPage && <Button onClick={() => void list.fetchNextPage()} busy={list.isFetchingNextPage}>Load more</Button>}
          </>
        )}
      </Card>
    </>
  );
}
