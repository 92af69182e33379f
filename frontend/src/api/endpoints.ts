/** Every backend route the UI uses, in one place, so a route change is a one-line edit. */
import { downloadFile, http, rawRequest, type Query } from "./http";
import type {
  AgentTestRun,
  Agent, AgentConfig, AgentSummary, AgentVersion, AnalyticsSummary, ApiKey, CallDetail, CallSummary, Carrier,
  CarrierCredentialMasked, CostAnalytics, Invitation, KnowledgeBase, KnowledgeSearchResult, KnowledgeSource, Me, Member, OrgSecret, Page,
  PhoneNumber, RecordingLink, Role,
  TestCallSession, TokenResponse, Voice, Webhook, WebhookDelivery,
} from "./types";

export const authApi = {
  login: (email: string, password: string) =>
    http.post<TokenResponse>("/auth/login", { email, password }, { anonymous: true }),
  register: (body: { email: string; password: string; name: string; org_name: string }) =>
    http.post<TokenResponse>("/auth/register", body, { anonymous: true }),
  acceptInvitation: (body: { token: string; password: string; name: string }) =>
    http.post<TokenResponse>("/auth/invitations/accept", body, { anonymous: true }),
  logout: () => http.post<void>("/auth/logout", {}),
  me: () => http.get<Me>("/auth/me"),
};

export const orgApi = {
  members: () => http.get<Member[]>("/org/members"),
  setRole: (userId: string, role: Role) => http.patch<Member>(`/org/members/${userId}`, { role }),
  removeMember: (userId: string) => http.delete(`/org/members/${userId}`),
  invitations: () => http.get<Invitation[]>("/org/invitations"),
  invite: (email: string, role: Role) => http.post<Invitation>("/org/invitations", { email, role }),
  revokeInvitation: (id: string) => http.delete(`/org/invitations/${id}`),
  apiKeys: () => http.get<ApiKey[]>("/org/api-keys"),
  createApiKey: (name: string, role: "admin" | "member" = "member") => http.post<ApiKey>("/org/api-keys", { name, role }),
  revokeApiKey: (id: string) => http.delete(`/org/api-keys/${id}`),
  webhooks: () => http.get<Webhook[]>("/webhooks"),
  createWebhook: (url: string, events: string[]) => http.post<Webhook>("/webhooks", { url, events }),
  updateWebhook: (id: string, body: Partial<Pick<Webhook, "url" | "events" | "active">>) =>
    http.patch<Webhook>(`/webhooks/${id}`, body),
  deleteWebhook: (id: string) => http.delete(`/webhooks/${id}`),
  deliveries: (id: string) => http.get<WebhookDelivery[]>(`/webhooks/${id}/deliveries`),
  carrierCredentials: () => http.get<CarrierCredentialMasked[]>("/org/carrier-credentials"),
  setCarrierCredentials: (
    carrier: Carrier,
    body: { account_id: string; auth_token: string },
  ) => http.put<CarrierCredentialMasked>(`/org/carrier-credentials/${carrier}`, body),
  deleteCarrierCredentials: (carrier: Carrier) => http.delete(`/org/carrier-credentials/${carrier}`),
  secrets: () => http.get<OrgSecret[]>("/org/secrets"),
  putSecret: (name: string, value: string) => http.put<OrgSecret>(`/org/secrets/${encodeURIComponent(name)}`, { value }),
  deleteSecret: (name: string) => http.delete(`/org/secrets/${encodeURIComponent(name)}`),
};

export const agentsApi = {
  list: () => http.get<AgentSummary[]>("/agents"),
  get: (id: string) => http.get<Agent>(`/agents/${id}`),
  create: (name: string, config: AgentConfig) => http.post<Agent>("/agents", { name, config }),
  /** Saving always creates a new version; calls record the version they used. */
  update: (id: string, body: { name?: string; config?: AgentConfig; note?: string; base_version?: number }) =>
    http.put<Agent>(`/agents/${id}`, body),
  remove: (id: string) => http.delete(`/agents/${id}`),
  versions: (id: string) => http.get<AgentVersion[]>(`/agents/${id}/versions`),
  version: (id: string, v: number) => http.get<AgentVersion>(`/agents/${id}/versions/${v}`),
  defaults: () => http.get<AgentConfig>("/agents/defaults"),
  testRuns: (id: string) => http.get<AgentTestRun[]>(`/agents/${id}/test-runs`),
  /** "Run tests": queues `suiteYaml`'s scenarios (empty: the agent's saved ones; `saveWithAgent`: saved as a new
   * version first); poll testRuns for the result. */
  startTestRun: (id: string, suiteYaml: string, saveWithAgent = false) =>
    http.post<AgentTestRun>(`/agents/${id}/test-runs/start`, { suite_yaml: suiteYaml, save_with_agent: saveWithAgent }),
};

export const knowledgeApi = {
  list: () => http.get<KnowledgeBase[]>("/knowledge-bases"),
  create: (name: string, description = "") => http.post<KnowledgeBase>("/knowledge-bases", { name, description }),
  remove: (id: string) => http.delete(`/knowledge-bases/${id}`),
  sources: (id: string) => http.get<KnowledgeSource[]>(`/knowledge-bases/${id}/sources`),
  /** Queued for indexing; the same file name replaces the earlier upload. */
  upload: (id: string, file: File, metadata: Record<string, string> = {}) => {
    const fd = new FormData();
    fd.append("file", file);
    fd.append("metadata", JSON.stringify(metadata));
    return http.post<KnowledgeSource>(`/knowledge-bases/${id}/sources`, fd);
  },
  addText: (id: string, name: string, text: string) =>
    http.post<KnowledgeSource>(`/knowledge-bases/${id}/sources/text`, { name, text }),
  removeSource: (id: string, sourceId: string) => http.delete(`/knowledge-bases/${id}/sources/${sourceId}`),
  search: (id: string, question: string, topK = 3) =>
    http.post<KnowledgeSearchResult>(`/knowledge-bases/${id}/search`, { question, top_k: topK }),
};

export const voicesApi = {
  list: () => http.get<Voice[]>("/voices"),
  /** WAV bytes synthesised by the backend (which talks to the TTS server); the browser never calls speech servers. */
  sample: async (body: { voice: string; engine?: string; text?: string; speed?: number }, signal?: AbortSignal) => {
    const res = await rawRequest("POST", "/voices/sample", { body, signal, accept: "audio/wav" });
    return res.blob();
  },
};

export const numbersApi = {
  list: () => http.get<PhoneNumber[]>("/phone-numbers"),
  create: (body: { number: string; carrier: Carrier; agent_id?: string | null; label?: string | null }) =>
    http.post<PhoneNumber>("/phone-numbers", body),
  update: (id: string, body: { agent_id?: string | null; label?: string | null }) =>
    http.patch<PhoneNumber>(`/phone-numbers/${id}`, body),
  remove: (id: string) => http.delete(`/phone-numbers/${id}`),
};

export interface CallFilters {
  agent_id?: string;
  direction?: string;
  status?: string;
  /** The post-call analysis verdict: "true" | "false". */
  success?: string;
  campaign_id?: string;
  q?: string;
  since?: string;
  until?: string;
}

export const callsApi = {
  list: (filters: CallFilters, cursor?: string | null, limit = 50) =>
    http.get<Page<CallSummary>>("/calls", { query: { ...filters, cursor, limit } as Query }),
  get: (id: string) => http.get<CallDetail>(`/calls/${id}`),
  recordingLink: (id: string) => http.get<RecordingLink>(`/calls/${id}/recording`),
  exportCsv: (filters: CallFilters) => downloadFile("/calls/export.csv", "calls.csv", filters as Query),
  /** Owners and admins; 409 while the call is in progress. */
  remove: (id: string) => http.delete(`/calls/${id}`),
};

export const analyticsApi = {
  summary: (query: { since?: string; until?: string; agent_id?: string; tz?: string }) =>
    http.get<AnalyticsSummary>("/analytics/summary", { query }),
  /** Every agent's: cost per day, agent, campaign and minute, from ended calls and the price book. */
  costs: (query: { since?: string; until?: string }) => http.get<CostAnalytics>("/analytics/costs", { query }),
};

export const testCallApi = {
  /** Asks the backend for a short-lived, single-use browser call session on the given agent. */
  start: (agent_id: string) => http.post<TestCallSession>("/test-calls", { agent_id }),
};
