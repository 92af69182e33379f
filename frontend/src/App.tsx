import { lazy, Suspense, type ReactNode } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { useAuth } from "./auth/AuthContext";
import { Layout } from "./components/Layout";
import { Spinner } from "./components/ui";
import { LoginPage } from "./pages/auth/LoginPage";
import { RegisterPage } from "./pages/auth/RegisterPage";
import { AcceptInvitationPage } from "./pages/auth/AcceptInvitationPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { KnowledgePage } from "./pages/knowledge/KnowledgePage";

// Heavier pages load on demand so the first paint (login) stays small.
const AgentsListPage = lazy(() => import("./pages/agents/AgentsListPage"));
const AgentEditorPage = lazy(() => import("./pages/agents/AgentEditorPage"));
const PhoneNumbersPage = lazy(() => import("./pages/numbers/PhoneNumbersPage"));
const CampaignsListPage = lazy(() => import("./pages/campaigns/CampaignsListPage"));
const CampaignWizardPage = lazy(() => import("./pages/campaigns/CampaignWizardPage"));
const CampaignDetailPage = lazy(() => import("./pages/campaigns/CampaignDetailPage"));
const LivePage = lazy(() => import("./pages/live/LivePage"));
const CallLogPage = lazy(() => import("./pages/calls/CallLogPage"));
const CallDetailPage = lazy(() => import("./pages/calls/CallDetailPage"));
const AnalyticsPage = lazy(() => import("./pages/analytics/AnalyticsPage"));
const SettingsPage = lazy(() => import("./pages/settings/SettingsPage"));
const TestCallPage = lazy(() => import("./pages/testcall/TestCallPage"));

function RequireAuth({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  if (status === "loading") return <Spinner label="Checking your session…" />;
  if (status === "signed_out") {
    return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  }
  return <>{children}</>;
}

function PublicOnly({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? "/agents";
  if (status === "loading") return <Spinner label="Checking your session…" />;
  if (status === "signed_in") return <Navigate to={from} replace />;
  return <>{children}</>;
}

export function App() {
  return (
    <Suspense fallback={<Spinner />}>
      <Routes>
        <Route path="/login" element={<PublicOnly><LoginPage /></PublicOnly>} />
        <Route path="/register" element={<PublicOnly><RegisterPage /></PublicOnly>} />
        {/* The backend's invitation links use /accept-invitation; /invitations/accept is kept as an alias. */}
        <Route path="/accept-invitation" element={<PublicOnly><AcceptInvitationPage /></PublicOnly>} />
        <Route path="/invitations/accept" element={<PublicOnly><AcceptInvitationPage /></PublicOnly>} />
        <Route element={<RequireAuth><Layout /></RequireAuth>}>
          <Route index element={<Navigate to="/agents" replace />} />
          <Route path="agents" element={<AgentsListPage />} />
          <Route path="agents/new" element={<AgentEditorPage />} />
          <Route path="agents/:agentId" element={<AgentEditorPage />} />
          <Route path="numbers" element={<PhoneNumbersPage />} />
          <Route path="knowledge" element={<KnowledgePage />} />
          <Route path="live" element={<LivePage />} />
          <Route path="live/:callId" element={<LivePage />} />
          <Route path="campaigns" element={<CampaignsListPage />} />
          <Route path="campaigns/new" element={<CampaignWizardPage />} />
          <Route path="campaigns/:campaignId" element={<CampaignDetailPage />} />
          <Route path="calls" element={<CallLogPage />} />
          <Route path="calls/:callId" element={<CallDetailPage />} />
          <Route path="analytics" element={<AnalyticsPage />} />
          <Route path="settings" element={<SettingsPage />} />
          <Route path="test-call" element={<TestCallPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </Suspense>
  );
}
