"""Shared pieces of the speech tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import httpx
import numpy as np
from stack_helpers import AsrServer  # noqa: F401 - re-exported; the handle lives with the shared fixtures

from voicectl.speech_auth import speech_headers

# Sentences Whisper tiny.en gets right from Piper's voice; WER is asserted per utterance (see WER_BOUND).
PHRASES = (
    "I need to reschedule my appointment.",
    "Can I speak to a human agent please.",
    "What are your opening hours?",
    "Could you please tell me what time the pharmacy on Main Street closes on Saturday evenings?",
    "Sure, that works for me.",
)
# Word error rate allowed per utterance (after lower-casing and removing punctuation). Synthetic speech through
# μ-law is easy for Whisper; 0.25 leaves room for one word in four (e.g. "a" vs "the") without hiding failures.
WER_BOUND = 0.25


def normalize(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))



@dataclass(frozen=True)
class Utterances:
    """Phrases with line noise and 1 s pauses, as a phone call would carry them (8 kHz μ-law)."""

    texts: tuple[str, ...]
    mulaw_8k: bytes  # what the carrier sends
    pcm16_8k: bytes  # the same after a transport decodes μ-law (what Pipecat hands to its STT)
    pcm16_16k: bytes  # a wideband copy (no μ-law)
    speech_end_s: tuple[float, ...]  # where each phrase ends in the 8 kHz audio


def synthesize(tts_url: str, text: str, sample_rate: int) -> np.ndarray:
    """int16 samples of `text` from the real TTS server."""
    with httpx.Client(timeout=30) as client:
        resp = client.post(
            f"{tts_url}/v1/audio/speech", headers=speech_headers("tests"), json={"input": text, "sample_rate": sample_rate, "response_format": "pcm"}
        )
    resp.raise_for_status()
    return np.frombuffer(resp.content, dtype="<i2")


def gpu_available() -> bool:
    try:
        import torch  # noqa: F401  (only on GPU installs)
    except ImportError:
        return False
    import torch as _torch

    return bool(_torch.cuda.is_available()) and bool(os.environ.get("TTS_XTTS_MODEL_DIR"))
