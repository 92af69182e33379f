import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { knowledgeApi } from "../../../api/endpoints";
import { Card, Checkbox, EmptyState, NumberField, SelectField, Spinner } from "../../../components/ui";
import type { SectionProps } from "./types";

/** Which knowledge bases the agent answers from, and how. */
export function KnowledgeSection({ config, set, errors, readOnly }: SectionProps) {
  const k = config.knowledge ?? {};
  const ids = k.knowledge_base_ids ?? [];
  const bases = useQuery({ queryKey: ["knowledge"], queryFn: knowledgeApi.list });
  const toggle = (id: string, on: boolean) =>
    set("knowledge.knowledge_base_ids", on ? [...ids, id] : ids.filter((x) => x !== id));
  return (
    <Card title="Knowledge">
      <p className="muted">On each caller turn the best matching passages are given to the model before it answers.</p>
      {bases.isPending ? (
        <Spinner label="Loading knowledge bases…" />
      ) : !bases.data?.length ? (
        <EmptyState title="No knowledge bases">Create one on the <Link to="/knowledge">Knowledge</Link> page.</EmptyState>
      ) : (
        <fieldset>
          <legend>Knowledge bases</legend>
          {bases.data.map((kb) => (
            <Checkbox key={kb.id} label={`${kb.name} (${kb.chunk_count} chunks)`} checked={ids.includes(kb.id)} onChange={(v) => toggle(kb.id, v)} disabled={readOnly} />
          ))}
        </fieldset>
      )}
      <div className="grid-3">
        <SelectField label="How" value={k.mode ?? "inject"} onChange={(e) => set("knowledge.mode", e.target.value)} disabled={readOnly}>
          <option value="inject">Before every answer (best for small models)</option>
          <option value="tool">As a tool the model calls</option>
        </SelectField>
        <NumberField label="Passages per answer" value={k.top_k} onValue={(v) => set("knowledge.top_k", v ?? 3)} min={1} max={10} step={1} readOnly={readOnly} error={errors["knowledge.top_k"]} />
        <NumberField label="Minimum score" value={k.score_threshold} onValue={(v) => set("knowledge.score_threshold", v ?? 0)} min={0} max={1} step={0.05} readOnly={readOnly} error={errors["knowledge.score_threshold"]} hint="0 to 1; lower finds more, less precisely" />
      </div>
    </Card>
  );
}
