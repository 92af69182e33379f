"""Audio formats the speech servers accept: PCM16, WAV containers (PCM16 or G.711 μ-law: core/g711.py), and a
sniff for non-audio bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np


def float_to_pcm16_bytes(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class AudioFormatError(ValueError):
    """The bytes are not audio in a format we accept; the message says why, for the client."""


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    encoding: str  # "pcm16" | "mulaw"
    data_offset: int
    data_length: int | None  # None: streaming WAV with an open-ended size


_WAV_PCM = 1
_WAV_MULAW = 7
_WAV_EXTENSIBLE = 0xFFFE


def parse_wav_header(data: bytes) -> WavInfo:
    """Parse a RIFF/WAVE header at the start of `data` (at least the header must be present)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(data):
                break
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if tag == _WAV_EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                (tag,) = struct.unpack("<H", data[body + 24 : body + 26])
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("WAV data chunk comes before its fmt chunk")
            tag, channels, rate, bits = fmt
            if tag == _WAV_PCM and bits == 16:
                encoding = "pcm16"
            elif tag == _WAV_MULAW and bits == 8:
                encoding = "mulaw"
            else:
                raise AudioFormatError(
                    f"WAV format tag {tag} with {bits}-bit samples is not supported; use 16-bit PCM or 8-bit μ-law"
                )
            if channels < 1:
                raise AudioFormatError("WAV header says 0 channels")
            length = None if size in (0, 0xFFFFFFFF) else size
            return WavInfo(rate, channels, encoding, body, length)
        pos = body + size + (size & 1)
    raise AudioFormatError("incomplete WAV header (no data chunk in the first bytes)")


_NON_AUDIO_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"ID3", "an MP3 file (send raw PCM or WAV)"),
    (b"OggS", "an Ogg file (send raw PCM or WAV)"),
    (b"fLaC", "a FLAC file (send raw PCM or WAV)"),
    (b"\x1aE\xdf\xa3", "a WebM/Matroska file (send raw PCM or WAV)"),
)
_TEXTISH = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def sniff_non_audio(data: bytes) -> str | None:
    """Say what the bytes look like when they are clearly not audio (a document, an image, plain text)."""
    head = data[:1024]
    for magic, what in _NON_AUDIO_MAGIC:
        if head.startswith(magic):
            return what
    if len(head) >= 64:
        printable = sum(1 for b in head if b in _TEXTISH)
        # Raw PCM, even of silence, is almost never 97 % printable ASCII; text and JSON always are.
        if printable / len(head) > 0.97:
            return "text (for example JSON or an error page), not audio"
    return None
