import { useEffect, useMemo, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "react-router-dom";
import { agentsApi } from "../../api/endpoints";
import { ApiError } from "../../api/http";
import type { AgentConfig } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { useToast } from "../../components/Toast";
import {
  Badge, Button, ConfirmButton, ErrorState, InlineError, PageHeader, Spinner, TabPanel, Tabs, TextField,
} from "../../components/ui";
import { setIn } from "../../lib/objectPath";
import { DEFAULT_AGENT_CONFIG, withDefaults } from "./defaults";
import { BehaviourSection } from "./sections/BehaviourSection";
import { BusinessSection } from "./sections/BusinessSection";
import { ConversationSection } from "./sections/ConversationSection";
import { FlowSection } from "./sections/FlowSection";
import { TestsSection } from "./sections/TestsSection";
import { KnowledgeSection } from "./sections/KnowledgeSection";
import { ModelsSection } from "./sections/ModelsSection";
import { ToolsSection, schemaText } from "./sections/ToolsSection";
import { TransfersSection } from "./sections/TransfersSection";
import { VersionsSection } from "./sections/VersionsSection";
import { VoiceSection } from "./sections/VoiceSection";
import { validateAgent } from "./validate";

type TabId =
  "conversation" | "flow" | "voice" | "models" | "knowledge" | "tools" | "transfers" | "business" | "behaviour" | "tests"
  | "versions";

const TAB_PREFIXES: Record<TabId, string[]> = {
  conversation: ["name", "system_prompt", "greeting", "goodbye", "language", "variables"],
  flow: ["flow"],
  voice: ["tts.voice", "tts.speed", "tts.engine"],
  models: ["stt", "llm", "tts.endpoint", "tts.fallbacks"],
  tools: ["tools"],
  transfers: ["transfer_targets"],
  business: ["context_webhook", "analysis"],
  knowledge: ["knowledge"],
  behaviour: ["interruption", "silence", "max_duration_s", "record", "enable_end_call", "degradation_message_stt"],
  tests: [],
  versions: [],
};

function tabOf(path: string): TabId {
  for (const [tab, prefixes] of Object.entries(TAB_PREFIXES) as [TabId, string[]][]) {
    if (prefixes.some((p) => path === p || path.startsWith(`${p}.`))) return tab;
  }
  return "conversation";
}

export default function AgentEditorPage() {
  const { agentId } = useParams();
  const isNew = !agentId;
  const { can } = useAuth();
  const readOnly = !can("admin");
  const navigate = useNavigate();
  const notify = useToast();
  const qc = useQueryClient();

  const agent = useQuery({ queryKey: ["agents", agentId], queryFn: () => agentsApi.get(agentId!), enabled: !isNew });

  const [name, setName] = useState("");
  const [config, setConfig] = useState<AgentConfig>(DEFAULT_AGENT_CONFIG);
  const [schemaTexts, setSchemaTexts] = useState<string[]>([]);
  const [saved, setSaved] = useState<string>("");
  const [note, setNote] = useState("");
  const [tab, setTab] = useState<TabId>("conversation");
  const [attempted, setAttempted] = useState(false);
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});

  const load = (n: string, c: AgentConfig) => {
    const full = withDefaults(c);
    setName(n);
    setConfig(full);
    setSchemaTexts((full.tools ?? []).map(schemaText));
    setSaved(JSON.stringify([n, full]));
    setServerErrors({});
    setAttempted(false);
    setNote("");
  };

  useEffect(() => {
    if (isNew) load("", DEFAULT_AGENT_CONFIG);
  }, [isNew]);
  useEffect(() => {
    if (agent.data) load(agent.data.name, agent.data.config);
  }, [agent.data]);

  const dirty = JSON.stringify([name, config]) !== saved || schemaTexts.some((t, i) => t !== schemaText((config.tools ?? [])[i] ?? {} as never));
  useEffect(() => {
    if (!dirty || readOnly) return;
    const warn = (e: BeforeUnloadEvent) => e.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty, readOnly]);

  const localErrors = useMemo(
    () => validateAgent(name, config, Object.fromEntries(schemaTexts.map((t, i) => [i, t]))),
    [name, config, schemaTexts],
  );
  const errors = { ...(attempted ? localErrors : pickTyping(localErrors)), ...serverErrors };
  const errorCount = (t: TabId) => Object.keys(errors).filter((p) => tabOf(p) === t).length;

  const set = (path: string, value: unknown) => {
    setConfig((c) => setIn(c, path, value));
    if (serverErrors[path]) setServerErrors(({ [path]: _, ...rest }) => rest);
  };

  const save = useMutation({
    mutationFn: () =>
      isNew
        ? agentsApi.create(name.trim(), config)
        : agentsApi.update(agentId!, { name: name.trim(), config, note: note.trim() || undefined, base_version: agent.data?.version }),
    onSuccess: (a) => {
      qc.invalidateQueries({ queryKey: ["agents"] });
      qc.setQueryData(["agents", a.id], a);
      load(a.name, a.config);
      notify(isNew ? `Agent “${a.name}” created` : `Saved as version ${a.version}`);
      if (isNew) navigate(`/agents/${a.id}`, { replace: true });
    },
    onError: (e) => {
      if (e instanceof ApiError && e.fields.length) {
        const map: Record<string, string> = {};
        for (const f of e.fields) map[f.path.replace(/^config\./, "")] = f.message;
        setServerErrors(map);
        const first = Object.keys(map)[0];
        if (first) setTab(tabOf(first));
      }
    },
  });

  const remove = useMutation({
    mutationFn: () => agentsApi.remove(agentId!),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: ["agents"] });
      notify("Agent deleted");
      navigate("/agents");
    },
  });

  function submit(e: FormEvent) {
    e.preventDefault();
    setAttempted(true);
    if (Object.keys(localErrors).length) {
      setTab(tabOf(Object.keys(localErrors)[0]));
      return;
    }
    save.mutate();
  }

  if (!isNew && agent.isPending) return <Spinner label="Loading agent…" />;
  if (!isNew && agent.isError) return <ErrorState error={agent.error} onRetry={() => void agent.refetch()} />;

  const baseTabs: { id: TabId; label: string }[] = [
    { id: "conversation", label: "Conversation" },
    { id: "flow", label: "Flow" },
    { id: "voice", label: "Voice" },
    { id: "models", label: "STT · LLM · TTS" },
    { id: "knowledge", label: "Knowledge" },
    { id: "tools", label: "Tools" },
    { id: "transfers", label: "Transfers" },
    { id: "business", label: "Lookup & analysis" },
    { id: "behaviour", label: "Interruptions & silence" },
    ...(!isNew ? [{ id: "tests" as TabId, label: "Tests" }, { id: "versions" as TabId, label: "Version history" }] : []),
  ];
  const tabs = baseTabs.map((t) => ({ ...t, label: errorCount(t.id) ? `${t.label} (${errorCount(t.id)} ⚠)` : t.label }));

  const props = { config, set, errors, readOnly };
  const errorList = Object.entries(errors);

  return (
    <form onSubmit={submit} noValidate className="editor">
      <PageHeader
        title={isNew ? "New agent" : name || "Agent"}
        subtitle={
          <>
            <Link to="/agents">Agents</Link> / {isNew ? "new" : <>version <Badge>v{agent.data?.version}</Badge></>}
            {readOnly && <> · <Badge tone="info">read-only: admins can edit</Badge></>}
          </>
        }
        actions={
          !isNew && can("admin") ? (
            <ConfirmButton onConfirm={() => remove.mutate()} busy={remove.isPending} confirmLabel="Delete for good" label="Delete agent">
              Delete
            </ConfirmButton>
          ) : null
        }
      />
      <TextField label="Agent name" value={name} onChange={(e) => setName(e.target.value)} readOnly={readOnly} error={errors.name} maxLength={120} className="name-field" />
      <Tabs label="Agent settings" tabs={tabs} current={tab} onChange={setTab} />
      <TabPanel id={tab}>
        {tab === "conversation" && <ConversationSection {...props} />}
        {tab === "flow" && <FlowSection {...props} />}
        {tab === "voice" && <VoiceSection {...props} />}
        {tab === "models" && <ModelsSection {...props} />}
        {tab === "knowledge" && <KnowledgeSection {...props} />}
        {tab === "tools" && <ToolsSection {...props} schemaTexts={schemaTexts} setSchemaTexts={setSchemaTexts} />}
        {tab === "transfers" && <TransfersSection {...props} />}
        {tab === "business" && <BusinessSection {...props} />}
        {tab === "behaviour" && <BehaviourSection {...props} />}
        {tab === "tests" && agentId && <TestsSection agentId={agentId} currentVersion={agent.data?.version ?? 0}
          savedScenarios={agent.data?.config.test_scenarios?.length ?? 0} unsavedEdits={dirty} />}
        {tab === "versions" && agentId && (
          <VersionsSection
            agentId={agentId}
            currentVersion={agent.data?.version ?? 0}
            editing={config}
            readOnly={readOnly}
            onRestore={(c, v) => {
              const full = withDefaults(c);
              setConfig(full);
              setSchemaTexts((full.tools ?? []).map(schemaText));
              setNote(`Restored from v${v}`);
              notify(`Loaded v${v} into the editor. Save to make it the current version.`, "info");
              setTab("conversation");
            }}
          />
        )}
      </TabPanel>

      {!readOnly && (
        <div className="save-bar" role="region" aria-label="Save">
          {attempted && errorList.length > 0 && (
            <div className="save-errors" role="alert">
              Fix {errorList.length} problem{errorList.length > 1 ? "s" : ""} before saving:{" "}
              {errorList.slice(0, 4).map(([p, m]) => (
                <button key={p} type="button" className="link-btn" onClick={() => setTab(tabOf(p))}>
                  {p}: {m}
                </button>
              ))}
            </div>
          )}
          {save.error instanceof ApiError && save.error.status === 409 ? (
            <div className="inline-error" role="alert">
              Someone saved a newer version while you were editing.{" "}
              <button type="button" className="link-btn" onClick={() => void agent.refetch().then(() => save.reset())}>
                Load their version
              </button>{" "}
              (your changes here will be replaced), or copy your edits first.
            </div>
          ) : (
            <InlineError error={save.isError && !(save.error instanceof ApiError && save.error.fields.length) ? save.error : null} />
          )}
          <span className="save-state" aria-live="polite">{dirty ? "Unsaved changes" : isNew ? "" : "All changes saved"}</span>
          {!isNew && dirty && (
            <TextField label="Change note (optional)" className="note-field" value={note} onChange={(e) => setNote(e.target.value)} maxLength={200} />
          )}
          <Button type="submit" variant="primary" busy={save.isPending} disabled={!dirty && !isNew}>
            {isNew ? "Create agent" : "Save new version"}
          </Button>
        </div>
      )}
    </form>
  );
}

/** Before the first save attempt, only show errors the user can't miss while typing (bad JSON, bad numbers). */
function pickTyping(errors: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(errors).filter(([p]) => p.endsWith(".parameters") || p.endsWith("phone_number") || /speed|temperature|tokens|score|min_words|timeout|reminder|max_duration/.test(p)));
}
