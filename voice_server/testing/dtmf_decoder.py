"""A DTMF (keypad tone) decoder for the fake carrier: Twilio's network hears the tones an agent plays in-band.

Twilio has no REST way to press keys on a live media stream, so the voice server plays them as tones in the audio
(voice_server/media/transport.py). The real network (or the phone menu at the other end) decodes them; the fake
carrier, which stands for that network, does the same with this decoder, so the simulated phone menu answers
in-band keys as it answers Vobiz's DTMF API.

The classic way (ITU-T Q.23/Q.24): the Goertzel algorithm measures the power at the four row and four column
frequencies in each block; a block holds a key when one row and one column stand well above the others, together
carry most of the block's energy, and are within the allowed twist of each other. A key is reported once, after
`min_blocks` blocks in a row, and again only after a block without it (a gap between two presses).
"""

from __future__ import annotations

import numpy as np

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
MIN_RATE = 4000  # the highest column tone (1633 Hz) must be under the Nyquist frequency
MIN_LEVEL = 200.0  # RMS (PCM16) under which a block is taken as silence
MIN_TONE_SHARE = 0.6  # of the block's energy in the row and column tones together
MIN_DOMINANCE = 4.0  # the chosen row (column) tone over the next strongest of its group, in power
MAX_TWIST = 10.0  # the stronger of the two tones over the weaker, in power (10 dB)


def goertzel_power(block: np.ndarray, rate: int, freq_hz: float) -> float:
    """The power of `block` (float samples) at `freq_hz`, normalised so a sine of amplitude A gives about A^2/2
    whatever the block's length."""
    n = block.size
    coeff = 2.0 * np.cos(2.0 * np.pi * freq_hz / rate)
    s1 = s2 = 0.0
    for x in block.tolist():
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return float(2.0 * power / (n * n))


def block_key(block: np.ndarray, rate: int) -> str | None:
    """The key whose two tones fill this block (float samples), or None (silence, speech, noise, one tone)."""
    energy = float(np.mean(block * block))
    if energy < MIN_LEVEL ** 2:
        return None
    rows = [goertzel_power(block, rate, f) for f in ROWS]
    cols = [goertzel_power(block, rate, f) for f in COLS]
    row, col = int(np.argmax(rows)), int(np.argmax(cols))
    strongest_row, strongest_col = rows[row], cols[col]
    other_row = max(p for i, p in enumerate(rows) if i != row)
    other_col = max(p for i, p in enumerate(cols) if i != col)
    if strongest_row < MIN_DOMINANCE * other_row or strongest_col < MIN_DOMINANCE * other_col:
        return None
    if max(strongest_row, strongest_col) > MAX_TWIST * min(strongest_row, strongest_col):
        return None
    if strongest_row + strongest_col < MIN_TONE_SHARE * energy:
        return None
    return KEYS[row][col]


class DtmfDecoder:
    """Streaming: `feed` PCM16 little-endian mono as it arrives, get the keys completed in it."""

    def __init__(self, rate: int, block_ms: int = 20, min_blocks: int = 2) -> None:
        if rate < MIN_RATE:
            raise ValueError(f"a sample rate of {rate} Hz cannot carry DTMF tones (at least {MIN_RATE} Hz)")
        if not 5 <= block_ms <= 100 or min_blocks < 1:
            raise ValueError("block_ms must be 5-100 and min_blocks at least 1")
        self.rate = rate
        self._block = rate * block_ms // 1000
        self._min_blocks = min_blocks
        self._pending = np.zeros(0, dtype=np.float64)
        self._current: str | None = None  # the key heard in the last block
        self._run = 0  # blocks in a row with `_current`
        self.keys = ""  # every key reported so far

    def feed(self, pcm: bytes) -> str:
        if not isinstance(pcm, bytes | bytearray | memoryview):
            raise TypeError("feed takes PCM16 bytes")
        if len(pcm) % 2:
            raise ValueError("PCM16 needs an even number of bytes")
        samples = np.concatenate([self._pending, np.frombuffer(pcm, dtype="<i2").astype(np.float64)])
        found = []
        whole = samples.size - samples.size % self._block
        for start in range(0, whole, self._block):
            key = block_key(samples[start:start + self._block], self.rate)
            if key is not None and key == self._current:
                self._run += 1
            else:
                self._current, self._run = key, 1
            if key is not None and self._run == self._min_blocks:
                found.append(key)
        self._pending = samples[whole:]
        self.keys += "".join(found)
        return "".join(found)
