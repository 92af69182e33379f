"""Small pure pieces of the speech servers: G.711, WAV sniffing, text cutting, the worker pools, the int8 kernel
choice."""

from __future__ import annotations

import asyncio
import io
import threading
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from core.g711 import mulaw_to_pcm16, pcm16_to_mulaw, ulaw_decode, ulaw_encode
from speech.asr.engine import WorkerPool, WorkerPoolBusy, _looks_repetitive
from speech.common.audio import AudioFormatError, parse_wav_header, sniff_non_audio
from speech.common.onnx_int8 import _cpu_flags, exact_kernel_needed
from speech.tts.service import PriorityPool
from speech.tts.text import split_for_streaming

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def test_mulaw_matches_the_reference_codec() -> None:
    """The one G.711 coder (core/g711.py) of the speech servers and of every call's audio on the voice server."""
    samples = np.arange(-32768, 32768, dtype=np.int16)
    reference = audioop.lin2ulaw(samples.tobytes(), 2)
    assert pcm16_to_mulaw(samples) == reference
    assert ulaw_encode(samples.tobytes()) == reference and ulaw_encode(samples.tobytes() + b"\x01") == reference
    every_code = bytes(range(256))
    assert mulaw_to_pcm16(every_code).tobytes() == audioop.ulaw2lin(every_code, 2) == ulaw_decode(every_code)


def test_exact_int8_kernel_only_where_u8s8_would_saturate(tmp_path: Path) -> None:
    """x86 without VNNI takes the exact kernel; a VNNI CPU keeps its fast exact one (the option cost smart-turn 75 %
    there); ARM never; unknown flags take the safe side."""
    epyc = frozenset("fpu sse4_2 avx avx2 fma f16c".split())
    xeon = epyc | {"avx512f", "avx512bw", "avx512_vnni", "amx_int8"}
    assert exact_kernel_needed("x86_64", epyc)
    assert not exact_kernel_needed("x86_64", xeon)
    assert not exact_kernel_needed("x86_64", epyc | {"avx_vnni"})  # Alder Lake and later client CPUs
    assert not exact_kernel_needed("aarch64", None) and not exact_kernel_needed("arm64", epyc)
    assert exact_kernel_needed("AMD64", None)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\nbugs\t\t: spectre_v1\n")
    assert _cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "avx512_vnni"})
    assert _cpu_flags(tmp_path / "missing") is None


def test_wav_headers_and_non_audio() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(8000)
        wf.writeframes(b"\x00\x00" * 800)
    info = parse_wav_header(buf.getvalue())
    assert (info.sample_rate, info.channels, info.encoding, info.data_offset) == (8000, 1, "pcm16", 44)
    with pytest.raises(AudioFormatError):
        parse_wav_header(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert sniff_non_audio(b'{"error": "this is json, not audio at all, really not"}' * 3)
    assert sniff_non_audio(b"ID3\x03\x00" + b"\x00" * 100)
    noise = (np.random.default_rng(0).normal(0, 3000, 4000)).astype("<i2").tobytes()
    assert sniff_non_audio(noise) is None
    assert sniff_non_audio(b"\x00" * 2000) is None


def test_first_piece_is_short_and_nothing_is_lost() -> None:
    text = "Thanks for calling Acme Dental, this is Joe. How can I help you today?\nBye."
    pieces = split_for_streaming(text, 28)
    assert pieces[0] == "Thanks for calling Acme Dental,"
    assert " ".join(pieces).split() == text.split()
    long_first = "Your appointment is on Tuesday the fourth at nine thirty in the morning with Doctor Patel."
    pieces = split_for_streaming(long_first, 28)
    assert len(pieces[0]) <= 28 and " ".join(pieces) == long_first
    assert split_for_streaming("Hello!", 28) == ["Hello!"]
    assert split_for_streaming(" ... ", 28) == []


def test_repetition_detector() -> None:
    assert _looks_repetitive("No thanks. No thanks. No thanks.")
    assert _looks_repetitive("yes yes yes yes yes yes yes yes")
    assert not _looks_repetitive("I need to reschedule my appointment for next Tuesday.")


async def test_asr_pool_queues_then_refuses() -> None:
    pool = WorkerPool(workers=1, queue_timeout_s=0.1)
    gate = threading.Event()
    blocked = asyncio.create_task(pool.run(gate.wait, 5))
    await asyncio.sleep(0.05)
    assert await pool.run(lambda: 1, optional=True) is None  # interims never wait
    with pytest.raises(WorkerPoolBusy):
        await pool.run(lambda: 2)
    gate.set()
    assert await blocked is True
    assert await pool.run(lambda: 3) == 3
    pool.shutdown()


async def test_tts_pool_serves_first_pieces_first() -> None:
    pool = PriorityPool(workers=1, timeout_s=1.0)
    await pool.acquire(priority=1)
    order: list[str] = []

    async def wait(name: str, priority: int) -> None:
        await pool.acquire(priority)
        order.append(name)
        pool.release()

    later = asyncio.create_task(wait("later piece", 1))
    await asyncio.sleep(0.01)
    first = asyncio.create_task(wait("first piece", 0))
    await asyncio.sleep(0.01)
    pool.release()
    await asyncio.gather(later, first)
    assert order == ["first piece", "later piece"]
    short = PriorityPool(workers=1, timeout_s=0.05)
    await short.acquire(0)
    with pytest.raises(TimeoutError):
        await short.acquire(0)
