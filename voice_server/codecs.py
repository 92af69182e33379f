"""L16 helpers (carriers may send network byte order), shared with the simulator; G.711 μ-law is core/g711.py."""

from __future__ import annotations

import numpy as np


def l16_to_native(data: bytes, byte_order: str) -> bytes:
    """Our pipeline works in little-endian PCM; big-endian (network order) L16 is byte-swapped."""
    data = data[: len(data) - len(data) % 2]
    if byte_order == "big":
        return np.frombuffer(data, dtype=">i2").astype("<i2").tobytes()
    return data


def native_to_l16(pcm: bytes, byte_order: str) -> bytes:
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    if byte_order == "big":
        return np.frombuffer(pcm, dtype="<i2").astype(">i2").tobytes()
    return pcm
