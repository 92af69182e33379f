import { useEffect, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { voicesApi } from "../../../api/endpoints";
import { Button, Card, InlineError, NumberField, SelectField, TextField } from "../../../components/ui";
import { renderTemplate } from "../../../lib/variables";
import type { SectionProps } from "./types";

/** Voice picker with a play-sample button. The sample is synthesised by the backend, never by the browser calling TTS. */
export function VoiceSection({ config, set, errors, readOnly }: SectionProps) {
  const voices = useQuery({ queryKey: ["voices"], queryFn: voicesApi.list, staleTime: 5 * 60_000 });
  const engine = config.tts?.engine ?? "piper";
  const voice = config.tts?.voice ?? "";
  const forEngine = (voices.data ?? []).filter((v) => v.engine === engine);
  const known = forEngine.some((v) => v.id === voice);
  const defaultSample = renderTemplate(config.greeting || "Hello! This is how I sound on the phone.", config.variables ?? {});
  const [sampleText, setSampleText] = useState<string | null>(null);
  const [state, setState] = useState<"idle" | "loading" | "playing">("idle");
  const [error, setError] = useState<unknown>(null);
  const audioRef = useRef<HTMLAudioElement | null>(null);
  const abortRef = useRef<AbortController | null>(null);

  const stop = () => {
    abortRef.current?.abort();
    audioRef.current?.pause();
    setState("idle");
  };
  useEffect(() => () => stop(), []);

  async function play() {
    stop();
    setError(null);
    setState("loading");
    const ctrl = new AbortController();
    abortRef.current = ctrl;
    try {
      const blob = await voicesApi.sample(
        { voice, engine, speed: config.tts?.speed ?? 1, text: (sampleText ?? defaultSample).slice(0, 300) },
        ctrl.signal,
      );
      const url = URL.createObjectURL(blob);
      const audio = audioRef.current ?? new Audio();
      audioRef.current = audio;
      audio.src = url;
      audio.onended = () => {
        setState("idle");
        URL.revokeObjectURL(url);
      };
      await audio.play();
      setState("playing");
    } catch (e) {
      if (ctrl.signal.aborted) return;
      setError(e);
      setState("idle");
    }
  }

  return (
    <Card title="Voice">
      <div className="grid-3">
        <SelectField
          label="Engine"
          value={engine}
          disabled={readOnly}
          onChange={(e) => {
            const next = e.target.value;
            set("tts.engine", next);
            const first = (voices.data ?? []).find((v) => v.engine === next);
            if (first) set("tts.voice", first.id);
          }}
          hint="Piper runs on CPU; XTTS needs a GPU and supports cloned voices."
        >
          <option value="piper">Piper (CPU)</option>
          <option value="xtts">XTTS (GPU)</option>
        </SelectField>
        {voices.isSuccess && forEngine.length > 0 ? (
          <SelectField label="Voice" value={voice} disabled={readOnly} onChange={(e) => set("tts.voice", e.target.value)} error={errors["tts.voice"]}>
            {!known && voice && <option value={voice}>{voice} (not on the TTS server)</option>}
            {forEngine.map((v) => (
              <option key={v.id} value={v.id}>
                {v.name || v.id}
                {v.language ? ` · ${v.language}` : ""}
              </option>
            ))}
          </SelectField>
        ) : (
          <TextField
            label="Voice"
            value={voice}
            readOnly={readOnly}
            onChange={(e) => set("tts.voice", e.target.value)}
            error={errors["tts.voice"]}
            hint={
              voices.isPending
                ? "Loading voices…"
                : voices.isError
                  ? "Couldn't load the voice list (is the TTS server up?); type a voice id, e.g. en_US-joe-medium."
                  : `No ${engine} voices on the TTS server; type a voice id.`
            }
          />
        )}
        <NumberField
          label="Speed"
          value={config.tts?.speed ?? 1}
          onValue={(v) => set("tts.speed", v)}
          min={0.5}
          max={2}
          step={0.05}
          readOnly={readOnly}
          error={errors["tts.speed"]}
          hint="0.5 – 2.0"
        />
      </div>
      <div className="sample-row">
        <TextField
          label="Sample text"
          className="grow"
          value={sampleText ?? defaultSample}
          onChange={(e) => setSampleText(e.target.value)}
          maxLength={300}
        />
        {state === "idle" ? (
          <Button onClick={() => void play()} disabled={!voice} aria-label={`Play sample of voice ${voice}`}>
            <span aria-hidden="true">▶</span> Play sample
          </Button>
        ) : (
          <Button onClick={stop} busy={state === "loading"} aria-label="Stop the sample">
            <span aria-hidden="true">■</span> {state === "loading" ? "Synthesising…" : "Stop"}
          </Button>
        )}
      </div>
      <InlineError error={error} />
    </Card>
  );
}
