"""The fake carrier's DTMF decoder (voice_server/testing/dtmf_decoder.py) on generated tones: every key at the
carriers' rates, the exact tones pipecat plays for in-band keys, noise and speech-like sound that must not decode,
repeated keys, keys split across feeds, and invalid input. No servers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.dtmf.utils import load_dtmf_audio

from voice_server.testing.dtmf_decoder import COLS, KEYS, ROWS, DtmfDecoder

ALL_KEYS = "".join(KEYS)


def key_tone(key: str, rate: int, seconds: float = 0.08, amplitude: float = 6000.0,
             twist: float = 1.0) -> np.ndarray:
    row = next(i for i, keys in enumerate(KEYS) if key in keys)
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * (np.sin(2 * np.pi * ROWS[row] * t) + twist * np.sin(2 * np.pi * COLS[KEYS[row].index(key)] * t))


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def pressed(keys: str, rate: int, noise: float = 0.0, gap_s: float = 0.06, seed: int = 1) -> bytes:
    gap = np.zeros(int(gap_s * rate))
    audio = np.concatenate([part for key in keys for part in (key_tone(key, rate), gap)])
    return pcm(audio + np.random.default_rng(seed).normal(0, noise, audio.size))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_key_decodes_in_order_at_the_carriers_rates(rate: int) -> None:
    decoder = DtmfDecoder(rate)
    assert decoder.feed(pressed(ALL_KEYS, rate)) == ALL_KEYS
    assert decoder.keys == ALL_KEYS


def test_the_tones_pipecat_plays_in_band_decode_to_their_keys() -> None:
    """What the voice server writes into a Twilio stream for each OutputDTMFFrame (pipecat's DTMF WAVs)."""
    decoder = DtmfDecoder(8000)
    heard = ""
    for key in "0123456789*#":
        tone = asyncio.run(load_dtmf_audio(KeypadEntry(key), sample_rate=8000))
        heard += decoder.feed(tone)
    assert heard == "0123456789*#"


def test_keys_survive_noise_and_twist_but_noise_alone_is_no_key() -> None:
    assert DtmfDecoder(8000).feed(pressed("159#", 8000, noise=1500.0)) == "159#"  # about 12 dB SNR
    twisted = pcm(np.concatenate([key_tone("7", 8000, twist=0.5), np.zeros(400)]))
    assert DtmfDecoder(8000).feed(twisted) == "7"
    rng = np.random.default_rng(7)
    assert DtmfDecoder(8000).feed(pcm(rng.normal(0, 6000, 8000 * 3))) == ""  # three seconds of loud noise
    t = np.arange(8000 * 2) / 8000
    vowel = sum(3000 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 20))  # a voiced sound's harmonics
    assert DtmfDecoder(8000).feed(pcm(vowel)) == ""
    single = pcm(8000 * np.sin(2 * np.pi * ROWS[0] * t))  # one tone of a pair is not a key
    assert DtmfDecoder(8000).feed(single) == ""
    quiet = pcm(key_tone("5", 8000, seconds=0.2, amplitude=50.0))  # under the level a line would carry
    assert DtmfDecoder(8000).feed(quiet) == ""


def test_a_held_key_is_one_press_and_repeats_need_a_gap() -> None:
    held = pcm(key_tone("3", 8000, seconds=1.0))
    assert DtmfDecoder(8000).feed(held) == "3"
    assert DtmfDecoder(8000).feed(pressed("33", 8000)) == "33"
    blip = pcm(key_tone("8", 8000, seconds=0.02))  # one 20 ms block: too short to be a press
    assert DtmfDecoder(8000).feed(blip) == ""


def test_a_key_split_across_feeds_is_heard_once() -> None:
    audio = pressed("42", 8000)
    decoder = DtmfDecoder(8000)
    heard = "".join(decoder.feed(audio[i:i + 322]) for i in range(0, len(audio), 322))  # 20.125 ms pieces
    assert heard == "42"


def test_invalid_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="cannot carry DTMF"):
        DtmfDecoder(3000)
    with pytest.raises(ValueError, match="block_ms"):
        DtmfDecoder(8000, block_ms=1)
    decoder = DtmfDecoder(8000)
    with pytest.raises(ValueError, match="even number"):
        decoder.feed(b"\x00\x01\x02")
    with pytest.raises(TypeError):
        decoder.feed("1234")  # type: ignore[arg-type]
    assert decoder.feed(b"") == "" and decoder.feed(pressed("9", 8000)) == "9"  # still usable
