import type { AgentConfig } from "../../api/types";

/** The defaults of core/agent_config.py, so a new agent starts from what the backend would fill in anyway. */
export const DEFAULT_AGENT_CONFIG: AgentConfig = {
  system_prompt: "You are a helpful, concise phone assistant. Answer in one or two short sentences.",
  greeting: "Hello! How can I help you today?",
  goodbye: "Thank you for calling. Goodbye!",
  language: "en-US",
  variables: {},
  stt: { provider: "riva", endpoint: { timeout_s: 10 }, language: "en-US", boosted_words: [], boost_score: 4, fallbacks: [] },
  llm: {
    provider: "openai_compatible",
    endpoint: { timeout_s: 10 },
    temperature: 0.6,
    max_tokens: 200,
    fallbacks: [],
    canned_reply: "I'm sorry, I'm having trouble right now. Let me get someone to help you.",
  },
  tts: { provider: "voiceagent_tts", endpoint: { timeout_s: 10 }, engine: "piper", voice: "en_US-joe-medium", speed: 1, fallbacks: [] },
  interruption: { enabled: true, min_words: 1, protect_greeting: true, resume_on_false_interruption: true, false_interruption_timeout_s: 1 },
  silence: {
    reminder_after_s: 8,
    reminder_text: "Are you still there?",
    max_reminders: 2,
    hangup_text: "I haven't heard from you, so I'll end the call now. Goodbye!",
  },
  max_duration_s: 900,
  tools: [],
  enable_end_call: true,
  transfer_targets: [],
  knowledge: { knowledge_base_ids: [], mode: "inject", top_k: 3, score_threshold: 0.3, filters: {} },
  record: true,
  degradation_message_stt: "I'm having trouble hearing you.",
};

/** Deep-merges a stored config over the defaults so every form field has a value. */
export function withDefaults(config: AgentConfig | undefined | null): AgentConfig {
  const c = config ?? {};
  const d = DEFAULT_AGENT_CONFIG;
  return {
    ...d,
    ...c,
    stt: { ...d.stt, ...c.stt, endpoint: { ...d.stt!.endpoint, ...c.stt?.endpoint } },
    llm: { ...d.llm, ...c.llm, endpoint: { ...d.llm!.endpoint, ...c.llm?.endpoint } },
    tts: { ...d.tts, ...c.tts, endpoint: { ...d.tts!.endpoint, ...c.tts?.endpoint } },
    interruption: { ...d.interruption, ...c.interruption },
    silence: { ...d.silence, ...c.silence },
    knowledge: { ...d.knowledge, ...c.knowledge },
    variables: { ...c.variables },
    tools: c.tools ?? [],
    transfer_targets: c.transfer_targets ?? [],
  };
}
