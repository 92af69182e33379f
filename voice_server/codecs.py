"""G.711 μ-law and L16 helpers (table-driven numpy, no per-sample Python), shared with the simulator."""

from __future__ import annotations

import numpy as np


def _build_ulaw_decode() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    sample = magnitude - 0x84
    return np.where(sign != 0, -sample, sample).astype(np.int16)


def _build_ulaw_encode() -> np.ndarray:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


_ULAW_TO_PCM = _build_ulaw_decode()
_PCM_TO_ULAW = _build_ulaw_encode()


def ulaw_decode(data: bytes) -> bytes:
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].tobytes()


def ulaw_encode(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.int32) + 32768
    return _PCM_TO_ULAW[samples].tobytes()


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
