"""Real speech servers for the speech tests, each started once per session on free ports (only when a test needs
it), plus test speech synthesized by the real TTS server and carried through 8 kHz μ-law like a phone call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from speechtest_helpers import PHRASES, AsrServer, Utterances, synthesize
from stack_helpers import run_asr

from core.g711 import mulaw_to_pcm16, pcm16_to_mulaw

# speech_state, tts_url, asr_server and llm_url are session fixtures in tests/conftest.py, shared with the other
# suites (one server of each per session).


@pytest.fixture(scope="session")
def small_asr_server(speech_state: Path) -> Iterator[AsrServer]:
    """An ASR server with one worker, a short queue and two streams at most: for the overload tests."""
    yield from run_asr(
        speech_state,
        "asr-small",
        ASR_WORKERS="1",
        ASR_CPU_THREADS="1",
        ASR_QUEUE_TIMEOUT_S="0.05",
        ASR_MAX_STREAMS="2",
    )


def _assemble(clips: list[np.ndarray], rate: int, seed: int) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    gap = np.zeros(rate, dtype=np.float64)
    parts: list[np.ndarray] = [np.zeros(rate // 2)]
    ends: list[float] = []
    for clip in clips:
        parts.append(clip.astype(np.float64))
        ends.append(sum(p.size for p in parts) / rate)
        parts.append(gap)
    audio = np.concatenate(parts)
    audio += rng.normal(0, 30, audio.size)  # faint line noise (-60 dBFS)
    return np.clip(audio, -32768, 32767).astype(np.int16), ends


@pytest.fixture(scope="session")
def utterances(tts_url: str) -> Utterances:
    texts = PHRASES[:3]
    audio_8k, ends = _assemble([synthesize(tts_url, t, 8000) for t in texts], 8000, seed=1)
    audio_16k, _ = _assemble([synthesize(tts_url, t, 16000) for t in texts], 16000, seed=2)
    mulaw = pcm16_to_mulaw(audio_8k)
    return Utterances(texts, mulaw, mulaw_to_pcm16(mulaw).tobytes(), audio_16k.tobytes(), tuple(ends))


@pytest.fixture(scope="session")
def single_phrases(tts_url: str) -> dict[str, bytes]:
    """Each phrase alone as 8 kHz μ-law with a little silence around it."""
    out: dict[str, bytes] = {}
    for i, text in enumerate(PHRASES):
        audio, _ = _assemble([synthesize(tts_url, text, 8000)], 8000, seed=10 + i)
        out[text] = pcm16_to_mulaw(audio)
    return out


