"""How often smart-turn calls a finished caller "incomplete" (so the turn ends only on its 2 s fallback), on caller
voices the stack was not tuned on, and what a text end-of-turn signal would win and cost.

Why: with a synthetic caller voice other than the agent's own Piper voice, 4 of 7 turns took 2.5-2.7 s because
smart-turn judged complete questions incomplete. The decision is the model's output on the audio, not a timing, so
it is measured here directly and load-independently: each utterance is spoken (Piper, and espeak-ng in several
accents), sent through a phone line (8 kHz μ-law), followed by the VAD's 200 ms stop window, and scored by the same
smart-turn v3.2 session the pipeline uses. Incomplete utterances (the caller pauses mid-sentence) are scored too,
so a rule that ends turns sooner is charged for every caller it would cut off.

The text signal: the ASR's final transcript of the same audio "reads complete" when it ends in . ? or ! and its last
word is not one that leaves a sentence hanging (a conjunction, preposition, article, filler). The unsure signal:
smart-turn's "incomplete" with a probability of complete of at least TURN_UNSURE_PROBABILITY (the voice server's
default). Either one shortens the wait to TURN_TEXT_FALLBACK_S.

Prints a table, writes bench/results/turn_end.json and the "Turn end on caller voices" section of BENCHMARKS.md.
Usage: .venv/bin/python bench/turn_end_bench.py [--asr host:port] [--tts URL]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.asr_voices_bench import (  # noqa: E402
    ESPEAK_VOICES,
    espeak_pcm_8k,
    piper_pcm_8k,
    speech_servers,
    transcribe,
)
from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from core.g711 import mulaw_to_pcm16, pcm16_to_mulaw  # noqa: E402
from pipelines.shared_models import SharedModels  # noqa: E402
from pipelines.turn_end import transcript_reads_complete  # noqa: E402
from voice_server.config import VoiceServerSettings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "turn_end.json"
START, END = "<!-- turn-end:start -->", "<!-- turn-end:end -->"
COMPLETE = (
    "What time do you close?", "Can you call me back later?", "I'd like to book a table.",
    "I need to reschedule my appointment for Tuesday.", "Can I speak to someone about my bill?",
    "My order has not arrived yet and I am worried.", "Do you have any appointments tomorrow morning?",
    "How much does a cleaning cost?", "Yes, that works for me.", "No, thank you.",
    "I want to cancel my subscription.", "Where is your nearest branch?",
)
# Where callers pause to think, after a function word and after a content word mid-sentence: (what was said before
# the pause, what would have followed). The pause is cut out of the whole sentence's audio, so the prosody is that of
# a sentence still going on; a prefix synthesised on its own would end with a finished sentence's falling pitch.
INCOMPLETE = (
    ("I need to reschedule my appointment for", "next Tuesday."), ("Can I speak to someone about", "my bill?"),
    ("My order has not arrived yet and", "I am worried."), ("I'd like to book a table for", "four people."),
    ("The problem is that", "my card was charged twice."), ("I was wondering if", "you are open on Sunday."),
    ("I need to reschedule my appointment", "because I am ill."), ("Could you tell me", "your opening hours?"),
    ("I'm calling about my", "last invoice."), ("We have two children and", "one dog."),
    ("My account number is", "four five six."), ("Do you have any appointments", "tomorrow morning?"),
)


UNSURE_PROBABILITY = VoiceServerSettings.model_fields["turn_unsure_probability"].default


@dataclass
class VoiceTurns:
    voice: str
    label: str
    complete_n: int
    incomplete_n: int
    smart_turn_complete: float  # share of complete utterances smart-turn calls complete (else: 2 s fallback)
    smart_turn_cutoff: float  # share of incomplete utterances smart-turn calls complete (agent talks over)
    text_complete: float
    text_cutoff: float
    either_complete: float  # smart-turn OR text
    either_cutoff: float
    # smart-turn says incomplete but the text reads complete: with TURN_TEXT_FALLBACK_S the turn ends that long
    # after the speech instead of 2 s (complete utterances: latency won) ...
    shortened: float
    # ... and a fragment in that state is cut off if the caller's pause outlasts TURN_TEXT_FALLBACK_S
    shortened_cutoff: float
    # the same with the unsure signal too (text OR smart-turn unsure), as the voice server's defaults run
    shortened_or_unsure: float
    shortened_or_unsure_cutoff: float


def on_the_line(speech: np.ndarray) -> np.ndarray:
    """200 ms lead, the speech through μ-law, the VAD's 200 ms stop window: what smart-turn sees at the VAD stop."""
    audio = np.concatenate([np.zeros(1600), speech, np.zeros(1600)])
    pcm = np.clip(audio + np.random.default_rng(3).normal(0, 30, audio.size), -32768, 32767).astype(np.int16)
    return mulaw_to_pcm16(pcm16_to_mulaw(pcm))


def measure(models: SharedModels, asr: str, voice: str, label: str, speak: dict[str, np.ndarray]) -> VoiceTurns:
    analyzer = models.turn_analyzer()
    assert analyzer is not None
    analyzer.set_sample_rate(8000)
    verdicts: dict[str, tuple[bool, bool, bool]] = {}
    for text, speech in speak.items():
        line = on_the_line(speech)
        scored = analyzer._predict_endpoint(line.astype(np.float32) / 32768.0)  # noqa: SLF001
        audio_complete = scored["prediction"] == 1
        unsure = not audio_complete and scored["probability"] >= UNSURE_PROBABILITY
        transcript = transcribe(asr, pcm16_to_mulaw(line))
        verdicts[text] = (audio_complete, transcript_reads_complete(transcript), unsure)

    def share(texts: tuple[str, ...], pick: int | None) -> float:
        hits = [(v[0] or v[1]) if pick is None else v[pick] for t, v in verdicts.items() if t in texts]
        return round(sum(hits) / max(1, len(hits)), 3)

    def shortened(texts: tuple[str, ...], unsure_too: bool = False) -> float:
        hits = [not v[0] and (v[1] or (unsure_too and v[2])) for t, v in verdicts.items() if t in texts]
        return round(sum(hits) / max(1, len(hits)), 3)

    prefixes = tuple(prefix for prefix, _ in INCOMPLETE)
    return VoiceTurns(voice, label, len(COMPLETE), len(INCOMPLETE),
                      share(COMPLETE, 0), share(prefixes, 0), share(COMPLETE, 1), share(prefixes, 1),
                      share(COMPLETE, None), share(prefixes, None), shortened(COMPLETE), shortened(prefixes),
                      shortened(COMPLETE, unsure_too=True), shortened(prefixes, unsure_too=True))


def speech_only(samples: np.ndarray) -> np.ndarray:
    """The samples between the first and the last that are louder than silence."""
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0]: loud[-1] + 1] if loud.size else samples


def utterances(say: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    """Complete sentences as spoken; each incomplete one cut out of its whole sentence where the prefix ends."""
    out = {text: say(text) for text in COMPLETE}
    for prefix, rest in INCOMPLETE:
        whole = speech_only(say(f"{prefix} {rest}"))
        out[prefix] = whole[: min(len(whole), len(speech_only(say(prefix))))]
    return out


def _remainder(complete: float, shortened: float) -> str:
    """The share still on the 2 s fallback; never printed as -0.00 (the two shares are rounded fractions)."""
    return f"{max(1 - complete - shortened, 0.0):.2f}"


def markdown(rows: list[VoiceTurns]) -> str:
    body = "\n".join(
        f"| {r.label} | {1 - r.smart_turn_complete:.2f} | {r.smart_turn_cutoff:.2f} | {r.text_complete:.2f} | "
        f"{r.text_cutoff:.2f} | {1 - r.either_complete:.2f} | {r.either_cutoff:.2f} | "
        f"{_remainder(r.smart_turn_complete, r.shortened)} | {r.shortened_cutoff:.2f} | "
        f"{_remainder(r.smart_turn_complete, r.shortened_or_unsure)} | {r.shortened_or_unsure_cutoff:.2f} |" for r in rows)
    return f"""{START}
## Turn end on caller voices (`bench/turn_end_bench.py`)

{provenance_line()}

{len(COMPLETE)} complete and {len(INCOMPLETE)} incomplete caller utterances (a pause mid-sentence) per voice, 8 kHz
μ-law, scored by the pipeline's smart-turn v3.2 session at the VAD stop, and transcribed by the platform's ASR for the
text signal (`transcript_reads_complete`, pipelines/turn_end.py). "Fallback" = a complete utterance that smart-turn
calls incomplete, so the turn ends only on the 2 s fallback; "cut-off" = an incomplete utterance judged complete, so
the agent would talk over a caller who had not finished. Decisions, not timings: load does not change them. The
last two columns are `TURN_TEXT_FALLBACK_S` (smart-turn's "incomplete" waits only that long when the text reads
complete): the complete utterances still left on the 2 s fallback, and the fragments that a pause longer than
TURN_TEXT_FALLBACK_S would cut off (on top of smart-turn's own cut-offs). The last two add the unsure signal
(`TURN_UNSURE_PROBABILITY` {UNSURE_PROBABILITY}: smart-turn's "incomplete" with at least that probability of complete
also waits only TURN_TEXT_FALLBACK_S), as the voice server runs by default.

| voice | smart-turn: fallback | smart-turn: cut-off | text: complete | text: cut-off | smart-turn or text: fallback | smart-turn or text: cut-off | text fallback: still 2 s | text fallback: cut off if the pause is longer | text or unsure: still 2 s | text or unsure: cut off if the pause is longer |
|---|---|---|---|---|---|---|---|---|---|---|
{body}

Raw numbers: `bench/results/turn_end.json`.
{END}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr", help="an ASR server's host:port (default: start one)")
    parser.add_argument("--tts", help="a TTS server's URL for Piper (default: start one)")
    args = parser.parse_args()
    models = SharedModels(smart_turn=True)
    asr, tts, procs = speech_servers(args.asr, args.tts, "turn-end-")
    try:
        rows = [measure(models, asr, "piper en_US-joe-medium", "Piper joe (the agent's own voice)",
                        utterances(lambda t: piper_pcm_8k(tts, t)))]
        print(rows[-1], flush=True)
        for voice, wpm, label in ESPEAK_VOICES:
            rows.append(measure(models, asr, voice, label,
                                utterances(lambda t, v=voice, w=wpm: espeak_pcm_8k(v, w, t))))  # type: ignore[misc]
            print(rows[-1], flush=True)
    finally:
        for proc in procs:
            proc.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    replace_section(START, END, markdown(rows))
    print(f"wrote {RESULTS.relative_to(ROOT)} and its section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
