"""Pure tones as markers in call audio (a test double's helper): a supervisor's or caller's tone is easy to find
again in what the other side heard, by its share of the frame's energy, whatever else is in the mix."""

from __future__ import annotations

import numpy as np


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 8000.0) -> bytes:
    """PCM16 mono."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16).tobytes()


def tone_share(frame: np.ndarray, rate: int, freq_hz: float) -> float:
    """The share of a frame's energy within 100 Hz of `freq_hz`."""
    spectrum = np.abs(np.fft.rfft(frame.astype(float) * np.hanning(frame.size))) ** 2
    freqs = np.fft.rfftfreq(frame.size, 1 / rate)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[np.abs(freqs - freq_hz) <= 100].sum()) / total
