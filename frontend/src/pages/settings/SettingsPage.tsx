import { useSearchParams } from "react-router-dom";
import { useAuth } from "../../auth/AuthContext";
import { PageHeader, TabPanel, Tabs } from "../../components/ui";
import { ApiKeysTab } from "./ApiKeysTab";
import { DncTab } from "./DncTab";
import { MembersTab } from "./MembersTab";
import { PrivacyTab } from "./PrivacyTab";
import { SecretsTab } from "./SecretsTab";
import { WebhooksTab } from "./WebhooksTab";

type TabId = "members" | "api-keys" | "secrets" | "webhooks" | "dnc" | "privacy";

export default function SettingsPage() {
  const { me, can } = useAuth();
  const [params, setParams] = useSearchParams();
  const tabs: { id: TabId; label: string }[] = [
    { id: "members", label: "Members & invitations" },
    ...(can("admin") ? [
      { id: "api-keys" as TabId, label: "API keys" }, { id: "secrets" as TabId, label: "Secrets" },
      { id: "webhooks" as TabId, label: "Webhooks" },
    ] : []),
    { id: "dnc", label: "Do-not-call list" },
    ...(can("admin") ? [{ id: "privacy" as TabId, label: "Privacy & retention" }] : []),
  ];
  const requested = params.get("tab") as TabId | null;
  const tab = tabs.some((t) => t.id === requested) ? requested! : "members";
  return (
    <>
      <PageHeader title="Settings" subtitle={me ? `Organisation: ${me.org.name}` : undefined} />
      <Tabs label="Settings sections" tabs={tabs} current={tab} onChange={(t) => setParams({ tab: t }, { replace: true })} />
      <TabPanel id={tab}>
        {tab === "members" && <MembersTab />}
        {tab === "api-keys" && <ApiKeysTab />}
        {tab === "secrets" && <SecretsTab />}
        {tab === "webhooks" && <WebhooksTab />}
        {tab === "dnc" && <DncTab />}
        {tab === "privacy" && <PrivacyTab />}
      </TabPanel>
    </>
  );
}
