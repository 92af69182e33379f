import type { CallSummary } from "../../api/types";
import { Badge } from "../../components/ui";
import { humanize } from "../../lib/format";

const GOOD = new Set(["caller_hangup", "agent_hangup", "transferred"]);
const WARN = new Set(["max_duration", "silence_timeout", "voicemail", "no_answer", "busy", "canceled"]);

export function CallStatusBadge({ call }: { call: Pick<CallSummary, "status" | "end_reason"> }) {
  if (!call.end_reason) {
    const live = call.status === "in_progress" || call.status === "queued";
    return <Badge tone={live ? "info" : "neutral"}>{humanize(call.status)}</Badge>;
  }
  const tone = GOOD.has(call.end_reason) ? "good" : WARN.has(call.end_reason) ? "warn" : "bad";
  return <Badge tone={tone}>{humanize(call.end_reason)}</Badge>;
}
