"""Beep over redacted speech in a finished recording: the caller's channel (left) of the spans where the caller said
something the agent redacts (core/redaction.py) is replaced by a 1 kHz tone, in place, before the upload. The
transcript only knows which turn held the PII, not the word, so the whole caller turn is covered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WAV_HEADER_BYTES = 44
TONE_HZ = 1000.0
TONE_LEVEL = 0.2  # of full scale: clearly a beep, not painful


def beep_over(path: Path, sample_rate: int, spans_ms: list[tuple[int, int]], channel: int = 0,
              channels: int = 2) -> int:
    """Overwrites `channel` of a 16-bit interleaved WAV in the given spans. Returns frames covered."""
    frame_bytes = 2 * channels
    total_frames = (path.stat().st_size - WAV_HEADER_BYTES) // frame_bytes
    covered = 0
    with path.open("r+b") as fh:
        for start_ms, end_ms in spans_ms:
            first = min(total_frames, max(0, start_ms * sample_rate // 1000))
            last = min(total_frames, max(first, end_ms * sample_rate // 1000))
            if last <= first:
                continue
            fh.seek(WAV_HEADER_BYTES + first * frame_bytes)
            frames = np.frombuffer(fh.read((last - first) * frame_bytes), dtype="<i2").reshape(-1, channels).copy()
            t = (np.arange(first, first + len(frames)) / sample_rate).astype(np.float64)
            frames[:, channel] = (np.sin(2 * np.pi * TONE_HZ * t) * TONE_LEVEL * 32767).astype("<i2")
            fh.seek(WAV_HEADER_BYTES + first * frame_bytes)
            fh.write(frames.tobytes())
            covered += len(frames)
    return covered
