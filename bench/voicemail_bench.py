"""In-call voicemail detection on a labelled set of synthesised answers: precision, recall, time to decide, A/B.

Why: the issue's goals are precision and recall >= 0.95 and a decision within 2.5 s. The set: person greetings,
call-screening prompts (a screener wants the caller to speak: labelled "person"), and voicemail greetings with and
without a record beep, each spoken by Piper (the agent's voice) and by espeak-ng voices (another synthesiser and other
accents), sent over a phone line (8 kHz μ-law, line noise) through the platform's ASR server, then classified as the
call does with the embedded model (pipelines/voicemail.py).

Both rule sets run on the same audio and the same transcripts in one run (A/B):
- before (the call at the previous commit): the cue list without "you reached"; interims every 0.5 s;
- after (this commit): the cue list with "you reached" (the ASR often drops the "'ve" of "you've reached");
  interims every SCREENING_INTERIM_MS (0.25 s; a screening stream asks the ASR server for them,
  pipelines/stt_chain.py).
Both: call-screening prompts excluded; a short answer ("Hello?", at most SHORT_ANSWER_WORDS words, no cue) decided
a person after 0.5 s of quiet.

Time to decide, from the start of the callee's audio, as the call decides, whichever comes first:
- early words: a cue in an interim transcript. An interim at audio position t is the transcript of the first t
  seconds; decide = t + that transcription's measured time (the ASR server's decode: load-dependent);
- the beep: where the beep detector fires on the audio (0.15 s into the record beep; anywhere, if a vowel
  passes for a tone);
- short answer (after only): the first stretch of speech up to a pause of at least the short quiet (a greeting's
  first sentence can be that) is heard as a short answer: decide = that pause's start + 0.5 s;
- otherwise the quiet: speech end + 1.0 s + the measured classification time.
Third arm, swept (greeting length: Asterisk AMD's maximumGreeting, the timing rule of carrier AMD): the after rules
plus "a callee who talks with no pause of at least GAP_S for longer than L seconds is a machine" (people answer
with a short "Hello?" and wait); decide = speech onset + L when the first stretch of speech (up to a pause of at
least GAP_S) is longer than L. It needs no transcript, so its decide time is its audio position.
The ASR's finalisation after the speech (~0.3 s endpointing + a decode) is not included, in either. Every decision
is also given by audio position alone (decode times left out), which does not depend on the machine's load.
The ASR server skips interims while its decodes take over 0.3 s (a busy machine): the measured decode times show
how often that would happen. The carrier's AMD verdict is not modelled (the carrier is a test double here).

Prints a table, writes bench/results/voicemail_ab.json and the "In-call voicemail detection: time to decide, A/B"
section of BENCHMARKS.md (the earlier sections stay for comparison).
Usage: .venv/bin/python bench/voicemail_bench.py [--asr host:port] [--tts URL]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.asr_voices_bench import espeak_pcm_8k, phone_line, piper_pcm_8k, speech_servers, transcribe  # noqa: E402
from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from pipelines.stt_chain import SCREENING_INTERIM_MS  # noqa: E402
from pipelines.voicemail import SCREENING_CUES, is_short_answer, is_tone, looks_like_voicemail  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "voicemail_ab.json"
START, END = "<!-- voicemail-ab:start -->", "<!-- voicemail-ab:end -->"
LEAD_S = 0.5  # phone_line's silence before the answer
DECISION_SILENCE_S, SHORT_QUIET_S = 1.0, 0.5
BEEP_MIN_S = 0.15
GOAL_S = 2.5
MAX_GREETING_S = (1.6, 1.8, 2.0, 2.2)  # L, the greeting-length arm's sweep
GAPS_S = (0.3, 0.5)  # a pause this long ends the stretch of talking
# The cue list of the previous commit, kept here only to measure "before" on the same transcripts.
OLD_CUES = re.compile(
    r"\b(you'?ve reached|you have reached|(reached|this is) the (voice ?mail|mailbox)|"
    r"leave (me |us )?(a |your )?(message|name|number|voice ?mail)|record your message|"
    r"after the (tone|beep)|at the (tone|beep)|"
    r"not available|unavailable|can'?t (come to|take|get to|answer) (the phone|your call|the call|my phone)|"
    r"mailbox|voice ?mail|not in service|please try again later|no one is available|away from|"
    r"(i'?ll|i will|we'?ll|we will) (call|get back to) you|currently closed|out of the office)\b", re.IGNORECASE)

PERSON = ["Hello?", "Hi, this is Sam speaking.", "Yeah, who's this?", "Good morning, Dr. Patel's office, how can I help?",
          "Hello, Maria here.", "Hi. Sorry, I was driving. Who is calling?"]
SCREENING = ["Please say your name and why you are calling, and I will see if this person is available.",
             "Hi, the person you are calling uses a screening service. Please state your name after the tone."]
VOICEMAIL = ["Hi, you've reached Sam. I can't come to the phone right now. Please leave a message after the tone.",
             "The person you are calling is not available. Please record your message at the tone.",
             "Hello, this is Maria. Leave me a message and I'll call you back.",
             "You have reached the voicemail of extension two four one. Please leave a message.",
             "Thanks for calling Patel Dental. Our office is currently closed. Please leave your name and number.",
             "Hey, it's Tom, I'm away from my phone. Leave a message."]
VOICES = [("piper", 0, "Piper joe"), ("en-us", 165, "espeak-ng American"), ("en-gb-x-rp", 160, "espeak-ng British RP"),
          ("en-us+f3", 165, "espeak-ng American female")]


@dataclass(frozen=True)
class Rules:
    name: str
    cues: Callable[[str], bool]
    interim_every_s: float
    short_answer: bool


BEFORE = Rules("before", lambda text: bool(OLD_CUES.search(text)) and not SCREENING_CUES.search(text), 0.5, True)
AFTER = Rules("after", looks_like_voicemail, SCREENING_INTERIM_MS / 1000, True)


@dataclass
class Verdict:
    verdict: str
    decide_s: float  # measured: audio position + the ASR's / classifier's time
    audio_s: float  # audio position alone: load-independent
    decided_by: str  # early words | beep | short answer | greeting length | words after the quiet
    heard: str


@dataclass
class Sample:
    voice: str
    label: str  # person | voicemail
    kind: str  # person | screening | voicemail | voicemail, no beep
    text: str
    speech_s: float
    first_pause_s: float | None  # start of the first pause >= SHORT_QUIET_S inside the speech
    beep_s: float | None  # where the beep detector fired, if it did (on a person's answer: a false beep)
    interim_decode_s: list[float]
    before: Verdict
    after: Verdict
    greeting: dict[str, Verdict]  # the greeting-length arm, by arm_name(L, gap)


def arm_name(max_greeting_s: float, gap_s: float) -> str:
    return f"L {max_greeting_s} s, pause {gap_s} s"


def beep_heard(pcm: np.ndarray) -> float | None:
    """Where the call's BeepDetector fires (seconds into the answer: the end of 0.15 s of steady tone), if it does;
    a sustained vowel can pass for one."""
    window, run = 8000 // 25, 0.0
    for start in range(0, len(pcm) - window, window):
        run = run + 0.04 if is_tone(pcm[start:start + window].astype(np.float64), 8000) else 0.0
        if run >= BEEP_MIN_S:
            return (start + window) / 8000
    return None


def record_beep() -> np.ndarray:
    t = np.arange(int(8000 * 0.5)) / 8000
    return np.concatenate([np.zeros(4000), 9000 * np.sin(2 * np.pi * 1000 * t)])


def voiced_frames(speech: np.ndarray) -> np.ndarray:
    """Indexes of the voiced 20 ms frames."""
    frames = speech[:len(speech) // 160 * 160].reshape(-1, 160)
    return np.flatnonzero(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) > 300)


def first_pause(idx: np.ndarray, gap_s: float) -> float | None:
    """Start of the first pause of >= gap_s between voiced frames, in seconds."""
    long_gap = np.flatnonzero(np.diff(idx) * 0.02 - 0.02 >= gap_s)
    return float((idx[long_gap[0]] + 1) * 0.02) if long_gap.size else None


def voiced(speech: np.ndarray) -> tuple[float, float | None]:
    """(end of the last voiced 20 ms frame, start of the first pause of >= SHORT_QUIET_S before it) in seconds."""
    idx = voiced_frames(speech)
    if idx.size == 0:
        return 0.0, None
    return (idx[-1] + 1) * 0.02, first_pause(idx, SHORT_QUIET_S)


def greeting_length_s(speech: np.ndarray, max_greeting_s: float, gap_s: float) -> float | None:
    """Where the greeting-length rule fires (onset + L, when the callee talks past it with no pause >= gap_s)."""
    idx = voiced_frames(speech)
    if idx.size == 0:
        return None
    onset = idx[0] * 0.02
    stretch_end = first_pause(idx, gap_s) or (idx[-1] + 1) * 0.02
    return round(onset + max_greeting_s, 2) if stretch_end - onset > max_greeting_s else None


class Interims:
    """Transcripts of the answer's first t seconds (what an interim at t says), each decoded once and timed."""

    def __init__(self, asr: str, line: bytes) -> None:
        self.asr, self.line = asr, line
        self.cache: dict[float, tuple[str, float]] = {}

    def at(self, t: float) -> tuple[str, float]:
        if t not in self.cache:
            started = time.perf_counter()
            text = transcribe(self.asr, self.line[:int((LEAD_S + t) * 8000)])  # μ-law: one byte a sample
            self.cache[t] = (text, time.perf_counter() - started)
        return self.cache[t]


def decide(rules: Rules, interims: Interims, heard: str, classify_s: float, speech_s: float,
           first_pause_s: float | None, beep_s: float | None, prefix_heard: Callable[[float], str],
           long_greeting_s: float | None = None) -> Verdict:
    candidates: list[Verdict] = []
    if long_greeting_s is not None:
        candidates.append(Verdict("voicemail", long_greeting_s, long_greeting_s, "greeting length", ""))
    t = rules.interim_every_s
    while t < speech_s:
        text, decode_s = interims.at(round(t, 2))
        if rules.cues(text):
            candidates.append(Verdict("voicemail", round(t + decode_s, 2), round(t, 2), "early words", text))
            break
        t += rules.interim_every_s
    if beep_s is not None:
        at = beep_s
        candidates.append(Verdict("voicemail", round(at, 2), round(at, 2), "beep", heard))
    if rules.short_answer:
        segment_end = first_pause_s if first_pause_s is not None else speech_s
        segment = heard if first_pause_s is None else prefix_heard(first_pause_s)
        if is_short_answer(segment):
            at = segment_end + SHORT_QUIET_S
            candidates.append(Verdict("person", round(at, 2), round(at, 2), "short answer", segment))
    at = speech_s + DECISION_SILENCE_S
    candidates.append(Verdict("voicemail" if rules.cues(heard) else "person", round(at + classify_s, 2), round(at, 2),
                              "words after the quiet", heard))
    return min(candidates, key=lambda v: v.audio_s)  # the call acts on whichever happens first


def run_one(asr: str, voice: str, speech: np.ndarray, kind: str, text: str, rng: np.random.Generator) -> Sample:
    audio = np.concatenate([speech, record_beep()]) if kind == "voicemail" else speech  # "voicemail, no beep": none
    line = phone_line(audio, rng)
    heard = transcribe(asr, line)
    speech_s, first_pause_s = voiced(speech)
    interims = Interims(asr, line)

    def prefix_heard(t: float) -> str:
        return interims.at(round(t, 2))[0]

    started = time.perf_counter()
    beep_s = beep_heard(audio)
    looks_like_voicemail(heard)
    classify_s = time.perf_counter() - started
    label = "voicemail" if kind.startswith("voicemail") else "person"
    before = decide(BEFORE, interims, heard, classify_s, speech_s, first_pause_s, beep_s, prefix_heard)
    after = decide(AFTER, interims, heard, classify_s, speech_s, first_pause_s, beep_s, prefix_heard)
    greeting = {arm_name(max_s, gap_s): decide(AFTER, interims, heard, classify_s, speech_s, first_pause_s, beep_s,
                                               prefix_heard, greeting_length_s(speech, max_s, gap_s))
                for max_s in MAX_GREETING_S for gap_s in GAPS_S}
    return Sample(voice, label, kind, text, round(speech_s, 2), first_pause_s, beep_s,
                  [round(d, 3) for _, d in interims.cache.values()], before, after, greeting)


def p50(values: list[float]) -> float:
    return round(float(np.median(values)), 2) if values else 0.0


def verdict_of(sample: Sample, which: str) -> Verdict:
    """The verdict of an arm: before, after, or a greeting-length arm's name."""
    return sample.greeting[which] if which in sample.greeting else getattr(sample, which)


def p95(values: list[float]) -> float:
    return round(float(np.percentile(values, 95)), 2) if values else 0.0


def scores(samples: list[Sample], which: str) -> dict[str, float]:
    verdicts = [(s.label, verdict_of(s, which).verdict) for s in samples]
    tp = sum(label == verdict == "voicemail" for label, verdict in verdicts)
    fp = sum(label == "person" and verdict == "voicemail" for label, verdict in verdicts)
    fn = sum(label == "voicemail" and verdict == "person" for label, verdict in verdicts)
    return {"precision": round(tp / max(1, tp + fp), 3), "recall": round(tp / max(1, tp + fn), 3)}


def arms(samples: list[Sample]) -> list[str]:
    return list(samples[0].greeting) if samples else []


VOICEMAIL_KINDS = ("voicemail", "voicemail, no beep")


def arm_times(samples: list[Sample], which: str) -> dict[str, float]:
    """Decide p50/p95 by audio position, for voicemail greetings and for persons (screening included)."""
    out: dict[str, float] = {}
    for name, label in (("voicemail", "voicemail"), ("person", "person")):
        audio = [verdict_of(s, which).audio_s for s in samples if s.label == label]
        out[f"{name}_audio_p50_s"], out[f"{name}_audio_p95_s"] = p50(audio), p95(audio)
    return out


def meets(samples: list[Sample], which: str) -> bool:
    """The bar for wiring an arm: precision and recall >= 0.95 and voicemail decide p50 <= GOAL_S by audio."""
    score = scores(samples, which)
    return (score["precision"] >= 0.95 and score["recall"] >= 0.95
            and arm_times(samples, which)["voicemail_audio_p50_s"] <= GOAL_S)


def sweep_lines(samples: list[Sample]) -> list[str]:
    """The greeting-length arm against before and after, on the same audio and transcripts."""
    lines = ["", "### Third arm: greeting length (Asterisk AMD's maximumGreeting), swept", "",
             "The after rules plus: a callee who talks with no pause of at least the given pause for longer than L "
             "seconds (from the speech onset) is decided voicemail at onset + L. Decide by audio position; "
             "\"person\" includes the screening prompts (labelled person). Bar to wire it: precision and recall "
             f"≥ 0.95 and voicemail p50 ≤ {GOAL_S} s.", "",
             "| arm | precision | recall | voicemail p50 / p95 (s) | person p50 / p95 (s) | persons taken for "
             "voicemail by length | meets the bar |", "|---|---|---|---|---|---|---|"]
    for which in ["before", "after", *arms(samples)]:
        score, times = scores(samples, which), arm_times(samples, which)
        by_length = sum(s.label == "person" and verdict_of(s, which).decided_by == "greeting length"
                        for s in samples)
        lines.append(f"| {which} | {score['precision']} | {score['recall']} | {times['voicemail_audio_p50_s']} / "
                     f"{times['voicemail_audio_p95_s']} | {times['person_audio_p50_s']} / "
                     f"{times['person_audio_p95_s']} | {by_length} | {'yes' if meets(samples, which) else 'no'} |")
    passing = [arm for arm in arms(samples) if meets(samples, arm)]
    best = passing[0] if passing else max(arms(samples), key=lambda arm: scores(samples, arm)["precision"])
    precisions = [scores(samples, arm)["precision"] for arm in arms(samples)]
    low, high = min(precisions), max(precisions)
    recall = "/".join(sorted({str(scores(samples, arm)["recall"]) for arm in arms(samples)}))
    fooled: dict[str, int] = {}
    for s in samples:
        if s.label == "person" and verdict_of(s, best).decided_by == "greeting length":
            fooled[s.text] = fooled.get(s.text, 0) + 1
    lines += ["", f"**Verdict: {'wired, ' + passing[0] if passing else 'no L meets the bar: not wired'}.** "
              f"Persons taken for a voicemail by length in {best} (answer: voices): "
              + ("; ".join(f"{text!r}: {n}" for text, n in fooled.items()) or "none") + ".",
              "", "Why it fails here: the rule fires on anyone who talks past L without a pause, and a real answer "
              "can be a long sentence: a business line answered by a person (\"Good morning, Dr. Patel's office, how "
              "can I help?\") and call-screening prompts (labelled person: they want the caller to speak) run 3-6 s "
              "with no pause of 0.5 s, so they are taken for a voicemail; a shorter pause (0.3 s) spares some of them but also lets greetings with a break escape the rule (voicemail "
              f"p95 back to the cue words). Recall {recall}; precision {low}-{high} over the sweep. "
              "It would also need the screening prompts told apart by their words before L (\"screening service\" "
              "comes ~2.5 s in) and would still take a person who answers with a long sentence for a machine, so it is "
              "not wired into the call (`pipelines/voicemail.py`): the cue words, the beep, the short-answer rule and "
              "the carrier's AMD decide as before. The \"after\" row's voicemail p50 is by audio position; measured "
              "(with the ASR's decode time) it is the goal line above."]
    return lines


def summary(samples: list[Sample]) -> dict[str, object]:
    out: dict[str, object] = {"samples": len(samples)}
    for which in ("before", "after"):
        decided = [getattr(s, which) for s in samples]
        out[which] = {**scores(samples, which), "decide_p50_s": p50([v.decide_s for v in decided]),
                      "audio_p50_s": p50([v.audio_s for v in decided]),
                      "within_goal": int(sum(v.decide_s <= GOAL_S for v in decided))}
    out["greeting_length"] = {arm: {**scores(samples, arm), **arm_times(samples, arm)} for arm in arms(samples)}
    decodes = [d for s in samples for d in s.interim_decode_s]
    out["false_beeps_on_persons"] = sum(s.beep_s is not None for s in samples if s.label == "person")
    out["interim_decode_p50_s"] = p50(decodes)
    out["interim_decodes_over_0_3_s"] = round(float(np.mean([d > 0.3 for d in decodes])), 3) if decodes else 0.0
    return out


def markdown(samples: list[Sample], load: tuple[float, float], wall_s: float) -> str:
    total = summary(samples)
    lines = [START, "## In-call voicemail detection: time to decide, A/B (outbound, issue 19)", "", provenance_line(),
             "", f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {wall_s:.0f} s; 1-minute load average "
             f"{load[0]:.2f} at the start, {load[1]:.2f} at the end (2 cores shared with other engineers' runs). "
             f"Interim decodes: p50 {total['interim_decode_p50_s']} s, {total['interim_decodes_over_0_3_s']:.0%} "
             "over 0.3 s (the ASR server skips interims while its decodes are that slow). The beep detector fired on "
             f"{total['false_beeps_on_persons']} of {sum(s.label == 'person' for s in samples)} answers by a person "
             "(a sustained vowel passing for a tone: a voicemail verdict at once, in both rule sets).", "",
             "`bench/voicemail_bench.py`: the labelled set of the sections above (person greetings, call-screening "
             "prompts labelled person, voicemail greetings with and without a record beep; Piper and three espeak-ng "
             "voices over an 8 kHz μ-law line through the ASR server), both rule sets on the same transcripts. "
             "**before**: the previous commit's rules (interims every 0.5 s, no \"you reached\" cue). **after**: "
             "interims every 0.25 s and the cue \"you reached\" (the ASR often drops the 've). Both exclude call "
             "screening and decide a short answer (≤ 3 words, no cue) a person after 0.5 s of quiet. Decide = from the start of the callee's audio, measured (the "
             "ASR's decode time included); audio = by audio position alone (does not depend on the load). The ASR's "
             "finalisation after the speech is in neither. Goals: precision and recall ≥ 0.95, decision ≤ 2.5 s.", "",
             "| answer | samples | decide p50 before → after (s) | audio p50 before → after (s) | decide max after (s) "
             "| within 2.5 s before → after | decided by (after) |", "|---|---|---|---|---|---|---|"]
    for kind in [*dict.fromkeys(s.kind for s in samples), "all"]:
        part = [s for s in samples if kind in ("all", s.kind)]
        m = summary(part)
        b, a = m["before"], m["after"]
        assert isinstance(b, dict) and isinstance(a, dict)
        by: dict[str, int] = {}
        for s in part:
            by[s.after.decided_by] = by.get(s.after.decided_by, 0) + 1
        lines.append(f"| {kind} | {len(part)} | {b['decide_p50_s']} → {a['decide_p50_s']} | {b['audio_p50_s']} → "
                     f"{a['audio_p50_s']} | {max(s.after.decide_s for s in part)} | {b['within_goal']} → "
                     f"{a['within_goal']} | {', '.join(f'{k} {v}' for k, v in sorted(by.items()))} |")
    lines += ["", "| voice | precision before → after | recall before → after |", "|---|---|---|"]
    for voice in [*dict.fromkeys(s.voice for s in samples), "all"]:
        part = [s for s in samples if voice in ("all", s.voice)]
        b, a = scores(part, "before"), scores(part, "after")
        lines.append(f"| {voice} | {b['precision']} → {a['precision']} | {b['recall']} → {a['recall']} |")
    lines += ["", *goal_lines(samples), *sweep_lines(samples)]
    for which in ("before", "after"):
        misses = [s for s in samples if s.label != getattr(s, which).verdict]
        lines += ["", f"Errors ({which}):"]
        lines += [f"- {s.voice}, {s.kind}: {s.text!r} heard as {getattr(s, which).heard!r} -> "
                  f"{getattr(s, which).verdict} ({getattr(s, which).decided_by})" for s in misses] or ["- none"]
    return "\n".join(lines + ["", END]) + "\n"


def goal_lines(samples: list[Sample]) -> list[str]:
    """The goals, met or not, for the rules as the call now runs them (after)."""
    after = scores(samples, "after")
    ok = after["precision"] >= 0.95 and after["recall"] >= 0.95
    lines = [f"- **Goals (after): precision {after['precision']} and recall {after['recall']}: "
             f"{'met' if ok else 'not met'} (≥ 0.95).**"]
    for name, kinds in (("all answers", None), ("a person", ("person",)), ("a voicemail", ("voicemail",
                                                                                         "voicemail, no beep"))):
        decide = p50([s.after.decide_s for s in samples if kinds is None or s.kind in kinds])
        lines.append(f"- **Time to decide, {name}: p50 {decide} s: {'met' if decide <= GOAL_S else 'not met'} "
                     f"(≤ {GOAL_S} s).**")
    lines += ["", "How to read it: \"before\" here models the previous call as it ran (interims throughout the "
              "greeting, time from the answer); the earlier \"early verdict\" section looked at interims in the "
              "first 2.5 s only and counted from 0.5 s before the answer, which is why its voicemail p50 (4.84 s) "
              "is higher than \"before\" here. A voicemail is decided when its first cue is heard, 2-4 s into "
              "most greetings; a person only once they stop, so an answer longer than ~2 s cannot be decided "
              "within 2.5 s by words. The short-answer rule trusts a pause: a real greeting that stops for 0.5 s after "
              "three words or fewer (\"Hi, it's Sam.\" ...) would be taken for a person; these synthesised greetings "
              "have no such pause (the column \"decided by\" shows where the rule acted). The carrier's AMD verdict (not modelled) and a model-based classifier on "
              "partial transcripts (needs a stronger LLM than SmolLM2-135M) are what remain."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr")
    parser.add_argument("--tts")
    args = parser.parse_args()
    samples: list[Sample] = []
    load_start, started = os.getloadavg()[0], time.monotonic()
    asr, tts, procs = speech_servers(args.asr, args.tts, "voicemail-bench-")
    try:
        rng = np.random.default_rng(11)
        for voice, wpm, label in VOICES:
            for kind, texts in (("person", PERSON), ("screening", SCREENING), ("voicemail", VOICEMAIL),
                                ("voicemail, no beep", VOICEMAIL[:3])):
                for text in texts:
                    speech = piper_pcm_8k(tts, text) if voice == "piper" else espeak_pcm_8k(voice, wpm, text)
                    samples.append(run_one(asr, label, speech, kind, text, rng))
            print(label, summary([s for s in samples if s.voice == label]), flush=True)
    finally:
        for proc in procs:
            proc.stop()
    load = (load_start, os.getloadavg()[0])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary(samples), "load_average_1m": load,
                                   "samples": [asdict(s) for s in samples]}, indent=2) + "\n")
    replace_section(START, END, markdown(samples, load, time.monotonic() - started))
    print(summary(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
