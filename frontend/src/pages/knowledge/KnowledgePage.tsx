import { useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { knowledgeApi } from "../../api/endpoints";
import type { KnowledgeSource } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { DataTable } from "../../components/DataTable";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, Card, ConfirmButton, EmptyState, ErrorState, InlineError, PageHeader, Spinner, TextArea, TextField,
} from "../../components/ui";
import { fmtDateTime } from "../../lib/format";

const ACCEPT = ".pdf,.docx,.txt,.md,.markdown,.csv";

/** Knowledge bases: documents agents answer from. Indexing runs in the background; the list polls while it does. */
export function KnowledgePage() {
  const { can } = useAuth();
  const admin = can("admin");
  const qc = useQueryClient();
  const notify = useToast();
  const bases = useQuery({ queryKey: ["knowledge"], queryFn: knowledgeApi.list });
  const [selected, setSelected] = useState<string | null>(null);
  const [name, setName] = useState("");
  const current = selected ?? bases.data?.[0]?.id ?? null;

  const create = useMutation({
    mutationFn: () => knowledgeApi.create(name.trim()),
    onSuccess: (kb) => {
      setName("");
      setSelected(kb.id);
      qc.invalidateQueries({ queryKey: ["knowledge"] });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => knowledgeApi.remove(id),
    onSuccess: () => {
      setSelected(null);
      qc.invalidateQueries({ queryKey: ["knowledge"] });
      notify("Knowledge base deleted");
    },
  });

  function submit(e: FormEvent) {
    e.preventDefault();
    if (name.trim()) create.mutate();
  }

  return (
    <>
      <PageHeader title="Knowledge" subtitle="Documents your agents answer from: price lists, policies, FAQs." />
      {admin && (
        <Card title="New knowledge base">
          <form className="inline-form" onSubmit={submit} noValidate>
            <TextField label="Name" value={name} onChange={(e) => setName(e.target.value)} maxLength={100} placeholder="Clinic policies" />
            <Button type="submit" variant="primary" busy={create.isPending} disabled={!name.trim()}>Create</Button>
          </form>
          <InlineError error={create.error} />
        </Card>
      )}
      {bases.isPending ? (
        <Spinner label="Loading…" />
      ) : bases.isError ? (
        <ErrorState error={bases.error} onRetry={() => void bases.refetch()} />
      ) : bases.data.length === 0 ? (
        <EmptyState title="No knowledge bases yet">Create one, upload documents, then pick it in an agent's Knowledge tab.</EmptyState>
      ) : (
        <>
          <nav aria-label="Knowledge bases" className="inline-form">
            {bases.data.map((kb) => (
              <Button key={kb.id} variant={kb.id === current ? "primary" : undefined} onClick={() => setSelected(kb.id)} aria-pressed={kb.id === current}>
                {kb.name} <Badge>{kb.chunk_count} chunks</Badge>
              </Button>
            ))}
          </nav>
          {current && (
            <KnowledgeBaseDetail
              key={current}
              kbId={current}
              admin={admin}
              onDelete={() => remove.mutate(current)}
              deleting={remove.isPending}
            />
          )}
        </>
      )}
    </>
  );
}

function KnowledgeBaseDetail({ kbId, admin, onDelete, deleting }: { kbId: string; admin: boolean; onDelete: () => void; deleting: boolean }) {
  const qc = useQueryClient();
  const sources = useQuery({
    queryKey: ["knowledge", kbId, "sources"],
    queryFn: () => knowledgeApi.sources(kbId),
    refetchInterval: (q) => (q.state.data?.some((s) => s.status === "queued" || s.status === "processing") ? 1000 : false),
  });
  const fileRef = useRef<HTMLInputElement>(null);
  const refresh = () => {
    qc.invalidateQueries({ queryKey: ["knowledge", kbId, "sources"] });
    qc.invalidateQueries({ queryKey: ["knowledge"], exact: true });
  };
  const upload = useMutation({
    mutationFn: (f: File) => knowledgeApi.upload(kbId, f),
    onSuccess: refresh,
    onSettled: () => {
      if (fileRef.current) fileRef.current.value = "";
    },
  });
  const [pasteName, setPasteName] = useState("");
  const [pasteText, setPasteText] = useState("");
  const paste = useMutation({
    mutationFn: () => knowledgeApi.addText(kbId, pasteName.trim(), pasteText),
    onSuccess: () => {
      setPasteName("");
      setPasteText("");
      refresh();
    },
  });
  const removeSource = useMutation({ mutationFn: (id: string) => knowledgeApi.removeSource(kbId, id), onSuccess: refresh });

  return (
    <>
      <Card
        title="Sources"
        actions={admin ? <ConfirmButton onConfirm={onDelete} busy={deleting} confirmLabel="Delete with all its chunks" label="Delete knowledge base">Delete</ConfirmButton> : null}
      >
        {admin && (
          <div className="file-row">
            <label htmlFor="kb-file">Upload PDF, DOCX, TXT, Markdown or CSV (one entry per row). The same name replaces the old file.</label>
            <input id="kb-file" ref={fileRef} type="file" accept={ACCEPT} onChange={(e) => e.target.files?.[0] && upload.mutate(e.target.files[0])} />
            {upload.isPending && <Spinner label="Uploading…" />}
            <InlineError error={upload.error} />
          </div>
        )}
        {sources.isPending ? (
          <Spinner label="Loading…" />
        ) : sources.isError ? (
          <ErrorState error={sources.error} onRetry={() => void sources.refetch()} />
        ) : sources.data.length === 0 ? (
          <EmptyState title="No sources yet" />
        ) : (
          <DataTable caption="Sources"
            columns={["Name", "Status", "Chunks", "Size", "Updated", admin && { hidden: "Actions" }]}>
            {sources.data.map((s) => (
              <tr key={s.id}>
                <td>{s.name}</td>
                <td><SourceStatus source={s} /></td>
                <td>{s.chunk_count}</td>
                <td>{fmtSize(s.size_bytes)}</td>
                <td>{fmtDateTime(s.updated_at)}</td>
                {admin && (
                  <td className="row-actions">
                    <ConfirmButton onConfirm={() => removeSource.mutate(s.id)} label={`Delete ${s.name}`} confirmLabel="Delete">Delete</ConfirmButton>
                  </td>
                )}
              </tr>
            ))}
          </DataTable>
        )}
      </Card>
      {admin && (
        <Card title="Paste text">
          <TextField label="Name" value={pasteName} onChange={(e) => setPasteName(e.target.value)} maxLength={200} placeholder="Opening hours" />
          <TextArea label="Text" value={pasteText} onChange={(e) => setPasteText(e.target.value)} rows={5} />
          <Button onClick={() => paste.mutate()} busy={paste.isPending} disabled={!pasteName.trim() || !pasteText.trim()}>Add text</Button>
          <InlineError error={paste.error} />
        </Card>
      )}
      <TestQuestion kbId={kbId} />
    </>
  );
}

function SourceStatus({ source }: { source: KnowledgeSource }) {
  if (source.status === "ready") return <Badge tone="good">ready</Badge>;
  if (source.status === "failed") return <><Badge tone="bad">failed</Badge> <span className="muted">{source.error}</span></>;
  if (source.status === "processing") return <Badge tone="info">processing {Math.round((source.progress ?? 0) * 100)}%</Badge>;
  return <><Badge>queued</Badge>{source.error && <span className="muted"> {source.error}</span>}</>;
}

function TestQuestion({ kbId }: { kbId: string }) {
  const [question, setQuestion] = useState("");
  const search = useMutation({ mutationFn: () => knowledgeApi.search(kbId, question.trim(), 3) });
  function submit(e: FormEvent) {
    e.preventDefault();
    if (question.trim()) search.mutate();
  }
  return (
    <Card title="Test a question">
      <form className="inline-form" onSubmit={submit} noValidate>
        <TextField label="Question" value={question} onChange={(e) => setQuestion(e.target.value)} maxLength={1000} className="grow" placeholder="How much is a cleaning?" />
        <Button type="submit" variant="primary" busy={search.isPending} disabled={!question.trim()}>Search</Button>
      </form>
      <InlineError error={search.error} />
      {search.data && (
        <div role="status">
          <p className="muted">{search.data.chunks.length} chunk{search.data.chunks.length === 1 ? "" : "s"} in {search.data.duration_ms} ms</p>
          <ol className="kb-results">
            {search.data.chunks.map((c) => (
              <li key={c.chunk_id}>
                <Badge tone="info">score {c.score.toFixed(2)}</Badge> <span className="muted">{c.source_name}{c.page ? `, p. ${c.page}` : ""} · vector {c.vector_score.toFixed(2)} · keyword {c.keyword_score.toFixed(2)}</span>
                <p>{c.text}</p>
              </li>
            ))}
          </ol>
        </div>
      )}
    </Card>
  );
}

function fmtSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
