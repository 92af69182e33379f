import { Card, NumberField, TextArea, TextField } from "../../../components/ui";
import { EndpointFields, FallbackList } from "./EndpointFields";
import type { SectionProps } from "./types";

export function ModelsSection({ config, set, errors, readOnly }: SectionProps) {
  return (
    <>
      <Card title="Speech to text (Riva)">
        <EndpointFields value={config.stt?.endpoint} onChange={(v) => set("stt.endpoint", v)} errors={errors} base="stt.endpoint" readOnly={readOnly} />
        <div className="grid-2">
          <TextField label="Recognition language" value={config.stt?.language ?? ""} onChange={(e) => set("stt.language", e.target.value)} readOnly={readOnly} />
          <NumberField
            label="Boost score"
            value={config.stt?.boost_score ?? 4}
            onValue={(v) => set("stt.boost_score", v)}
            min={0}
            max={100}
            readOnly={readOnly}
            error={errors["stt.boost_score"]}
          />
        </div>
        <TextArea
          label="Boosted words"
          rows={2}
          value={(config.stt?.boosted_words ?? []).join(", ")}
          onChange={(e) => set("stt.boosted_words", e.target.value.split(/[,\n]/).map((w) => w.trim()).filter(Boolean))}
          readOnly={readOnly}
          error={errors["stt.boosted_words"]}
          hint="Comma-separated names and terms the recogniser should prefer (product names, surnames). Up to 100."
        />
        <FallbackList value={config.stt?.fallbacks} onChange={(v) => set("stt.fallbacks", v)} errors={errors} base="stt.fallbacks" readOnly={readOnly} />
      </Card>

      <Card title="Language model (OpenAI-compatible)">
        <EndpointFields
          value={config.llm?.endpoint}
          onChange={(v) => set("llm.endpoint", v)}
          errors={errors}
          base="llm.endpoint"
          readOnly={readOnly}
          modelHint="e.g. gpt-4o-mini, or the model name your vLLM/Ollama server serves."
        />
        <div className="grid-2">
          <NumberField
            label="Temperature"
            value={config.llm?.temperature ?? 0.6}
            onValue={(v) => set("llm.temperature", v)}
            min={0}
            max={2}
            step={0.1}
            readOnly={readOnly}
            error={errors["llm.temperature"]}
          />
          <NumberField
            label="Max tokens per reply"
            value={config.llm?.max_tokens ?? 200}
            onValue={(v) => set("llm.max_tokens", v)}
            min={1}
            max={4096}
            step={1}
            readOnly={readOnly}
            error={errors["llm.max_tokens"]}
          />
        </div>
        <TextArea
          label="Reply when the model is unavailable"
          rows={2}
          value={config.llm?.canned_reply ?? ""}
          onChange={(e) => set("llm.canned_reply", e.target.value)}
          readOnly={readOnly}
        />
        <FallbackList value={config.llm?.fallbacks} onChange={(v) => set("llm.fallbacks", v)} errors={errors} base="llm.fallbacks" readOnly={readOnly} />
      </Card>

      <Card title="Text to speech server">
        <EndpointFields value={config.tts?.endpoint} onChange={(v) => set("tts.endpoint", v)} errors={errors} base="tts.endpoint" readOnly={readOnly} />
        <FallbackList value={config.tts?.fallbacks} onChange={(v) => set("tts.fallbacks", v)} errors={errors} base="tts.fallbacks" readOnly={readOnly} />
      </Card>
    </>
  );
}
