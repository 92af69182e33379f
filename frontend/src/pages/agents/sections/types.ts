import type { AgentConfig } from "../../../api/types";

export interface SectionProps {
  config: AgentConfig;
  set: (path: string, value: unknown) => void;
  errors: Record<string, string>;
  readOnly: boolean;
}
