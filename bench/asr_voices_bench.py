"""ASR word-error rate on caller voices the stack was not tuned on, over a phone line (8 kHz μ-law).

Why: every earlier ASR figure used Piper's "joe" voice, which is also the agent's voice, so a WER of 0.0 said little
about real callers. Here the same sentences are spoken by espeak-ng (a formant synthesiser, nothing like Piper) in
several English accents and voice variants, plus Piper as the reference, then sent through the platform's ASR
server exactly as a call's audio is: 8 kHz μ-law, line noise, Riva streaming protocol.

Prints a table, writes bench/results/asr_voices.json and the "ASR word-error rate by caller voice" section of
BENCHMARKS.md. Usage: .venv/bin/python bench/asr_voices_bench.py [--asr host:port] [--tts URL]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import provenance_line  # noqa: E402
from bench.report_sections import replace_section  # noqa: E402
from bench.speech_bench import ASR_TEXTS, wer  # noqa: E402
from core.g711 import pcm16_to_mulaw  # noqa: E402
from voicectl.launch import asr_process, tts_process  # noqa: E402
from voicectl.procs import ManagedProcess, free_port  # noqa: E402
from voicectl.speech_auth import riva_metadata, speech_headers  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "asr_voices.json"
START, END = "<!-- asr-voices:start -->", "<!-- asr-voices:end -->"
# (espeak-ng voice, words per minute, label). Accents and voice variants that are far from Piper's joe.
ESPEAK_VOICES = (
    ("en-us", 165, "espeak-ng American, male"),
    ("en-us+f3", 165, "espeak-ng American, female variant"),
    ("en-gb-x-rp", 160, "espeak-ng British RP"),
    ("en-gb-scotland", 160, "espeak-ng Scottish"),
    ("en-gb-x-gbcwmd", 160, "espeak-ng West Midlands"),
    ("en-029", 160, "espeak-ng Caribbean"),
    ("en-us+m3", 190, "espeak-ng American, fast speaker"),
)


@dataclass
class VoiceResult:
    voice: str
    label: str
    utterances: int
    words: int
    wer: float  # corpus WER: all edits / all reference words
    worst: str


def espeak_pcm_8k(voice: str, wpm: int, text: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", out.name, text], check=True, timeout=30)
        with wave.open(out.name) as wav:
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return soxr.resample(samples.astype(np.float32), rate, 8000)


def piper_pcm_8k(tts_url: str, text: str) -> np.ndarray:
    resp = httpx.post(f"{tts_url}/v1/audio/speech", timeout=60, headers=speech_headers("bench"),
                      json={"input": text, "sample_rate": 8000, "response_format": "pcm"})
    resp.raise_for_status()
    return np.frombuffer(resp.content, dtype="<i2").astype(np.float32)


def phone_line(speech: np.ndarray, rng: np.random.Generator) -> bytes:
    """Half a second of lead, the speech, a second of tail, faint line noise; 8 kHz μ-law as the carrier sends."""
    audio = np.concatenate([np.zeros(4000), speech, np.zeros(8000)])
    audio = audio + rng.normal(0, 30, audio.size)
    return pcm16_to_mulaw(np.clip(audio, -32768, 32767).astype(np.int16))


def transcribe(asr_address: str, mulaw: bytes, stop_ms: int = 0) -> str:
    """`stop_ms`: the endpoint silence the client asks for (Riva's stop_history, as the call pipeline sends
    STT_ENDPOINT_SILENCE_MS); 0 = the server's ASR_STOP_MS."""
    import riva.client

    asr = riva.client.ASRService(riva.client.Auth(uri=asr_address, metadata_args=riva_metadata("bench")))
    config = riva.client.StreamingRecognitionConfig(
        # Punctuated as the call pipeline asks for it (WER ignores punctuation; the turn-end bench reads it).
        config=riva.client.RecognitionConfig(encoding=riva.client.AudioEncoding.MULAW, sample_rate_hertz=8000,
                                             language_code="en-US", enable_automatic_punctuation=True),
        interim_results=False)
    riva.client.add_endpoint_parameters_to_config(config, 0, 0.0, stop_ms, 0, 0.0, 0.0)
    chunks = (mulaw[i:i + 1600] for i in range(0, len(mulaw), 1600))
    finals = [r.alternatives[0].transcript for resp in asr.streaming_response_generator(chunks, config)
              for r in resp.results if r.is_final and r.alternatives]
    return " ".join(finals)


def measure(asr: str, label: str, voice: str, speak: list[np.ndarray], stop_ms: int = 0) -> VoiceResult:
    rng = np.random.default_rng(7)
    edits = words = 0.0
    worst, worst_wer = "", -1.0
    for text, speech in zip(ASR_TEXTS, speak, strict=True):
        hyp = transcribe(asr, phone_line(speech, rng), stop_ms)
        n = len(text.split())
        w = wer(text, hyp)
        edits, words = edits + w * n, words + n
        if w > worst_wer:
            worst, worst_wer = f"{text!r} -> {hyp!r}", w
    return VoiceResult(voice, label, len(ASR_TEXTS), int(words), round(edits / max(1, words), 3), worst)


def markdown(results: list[VoiceResult]) -> str:
    rows = "\n".join(f"| {r.label} | `{r.voice}` | {r.utterances} | {r.words} | {r.wer:.3f} | {r.worst} |"
                     for r in results)
    non_piper = [r for r in results if not r.voice.startswith("piper")]
    pooled = sum(r.wer * r.words for r in non_piper) / max(1, sum(r.words for r in non_piper))
    return f"""{START}
## ASR word-error rate by caller voice (`bench/asr_voices_bench.py`)

{provenance_line()}

Whisper tiny.en (int8) behind the platform's Riva-protocol ASR server, the {len(ASR_TEXTS)} sentences of the speech
benchmark (1-8 s), each spoken by the voice below, then 8 kHz μ-law with faint line noise and streamed as a call's
audio is. Corpus WER = all word edits / all reference words (lower-cased, punctuation removed). Piper "joe" is the
agent's own voice, kept as the reference; the espeak-ng voices are a different synthesiser with other accents.
**Pooled WER over the non-Piper voices: {pooled:.3f}.**

| voice | id | utterances | words | WER | worst utterance (reference -> transcript) |
|---|---|---|---|---|---|
{rows}

espeak-ng is robotic compared with a human caller: these figures bound how the ASR copes with accents and
synthesis it was not tuned on; they are not a human-speech WER. Raw numbers: `bench/results/asr_voices.json`.
{END}"""


def speech_servers(asr: str | None, tts: str | None, prefix: str) -> tuple[str, str, list[ManagedProcess]]:
    """The ASR address and TTS URL given, or fresh servers for the ones not given (started; stop the list)."""
    procs: list[ManagedProcess] = []
    state = Path(tempfile.mkdtemp(prefix=prefix))
    env = {"VOICEAGENT_STATE_DIR": str(state), "LOG_JSON": "false"}
    if not asr:
        port, health = free_port(), free_port()
        procs.append(asr_process(state / "asr", port=port, health_port=health, env=env))
        asr = f"127.0.0.1:{port}"
    if not tts:
        tts_port = free_port()
        procs.append(tts_process(state / "tts", port=tts_port, env=env))
        tts = f"http://127.0.0.1:{tts_port}"
    try:
        for proc in procs:
            proc.start_timeout = 120
            proc.start()
    except Exception:
        for proc in procs:
            proc.stop()
        raise
    return asr, tts, procs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr", help="an ASR server's host:port (default: start one)")
    parser.add_argument("--tts", help="a TTS server's URL for the Piper reference (default: start one)")
    parser.add_argument("--stop-ms", type=int, action="append", default=[], metavar="MS",
                        help="the client's endpoint silence (STT_ENDPOINT_SILENCE_MS), one pass each, same audio; "
                             "default: the server's ASR_STOP_MS")
    parser.add_argument("--results", type=Path, default=None, metavar="PATH",
                        help="write the raw numbers here and leave BENCHMARKS.md alone (a one-off A/B)")
    args = parser.parse_args()
    asr, tts, procs = speech_servers(args.asr, args.tts, "asr-voices-")
    by_stop: dict[int, list[VoiceResult]] = {}
    try:
        speak = [("Piper joe (the agent's own voice)", "piper en_US-joe-medium",
                  [piper_pcm_8k(tts, t) for t in ASR_TEXTS])]
        speak += [(label, voice, [espeak_pcm_8k(voice, wpm, t) for t in ASR_TEXTS])
                  for voice, wpm, label in ESPEAK_VOICES]
        for label, voice, audio in speak:  # each voice through every endpoint in turn: load hits all alike
            for stop_ms in args.stop_ms or [0]:
                by_stop.setdefault(stop_ms, []).append(measure(asr, label, voice, audio, stop_ms))
                print(f"{label:40s} stop_ms {stop_ms or 'server'} WER {by_stop[stop_ms][-1].wer:.3f}", flush=True)
    finally:
        for proc in procs:
            proc.stop()
    if args.results is not None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps({str(k): [asdict(r) for r in v] for k, v in by_stop.items()},
                                           indent=2) + "\n")
        print(f"wrote {args.results}")
        return 0
    results = next(iter(by_stop.values()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    replace_section(START, END, markdown(results))
    print(f"wrote {RESULTS.relative_to(ROOT)} and its section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
