"""The TTS server over HTTP: streaming, sample rates, voices, errors, concurrency; the ASR server checks the words."""

from __future__ import annotations

import asyncio
import os
import struct
import time

import httpx
import numpy as np
import pytest
import riva.client
from speechtest_helpers import WER_BOUND, AsrServer, normalize, wer

from core.g711 import pcm16_to_mulaw
from core.service_auth import mint_service_token
from voicectl.speech_auth import riva_metadata, speech_headers

LONG_TEXT = (
    "Thanks for calling Acme Dental, this is Joe. I can book, move or cancel an appointment for you. "
    "We are open from eight in the morning until six in the evening, Monday to Friday. "
    "On Saturdays we close at noon. How can I help you today?"
)


async def _stream(client: httpx.AsyncClient, body: dict) -> tuple[int, dict, list[tuple[float, bytes]]]:
    t0 = time.perf_counter()
    chunks: list[tuple[float, bytes]] = []
    async with client.stream("POST", "/v1/audio/speech", json=body) as resp:
        if resp.status_code != 200:
            return resp.status_code, dict(resp.headers), [(0.0, await resp.aread())]
        async for chunk in resp.aiter_bytes():
            chunks.append((time.perf_counter() - t0, chunk))
    return resp.status_code, dict(resp.headers), chunks


def _transcribe(asr: AsrServer, pcm: bytes, rate: int) -> str:
    service = riva.client.ASRService(riva.client.Auth(uri=asr.address, metadata_args=riva_metadata("tests")))
    if rate == 8000:
        data, encoding = pcm16_to_mulaw(np.frombuffer(pcm, "<i2")), riva.client.AudioEncoding.MULAW
    else:
        data, encoding = pcm, riva.client.AudioEncoding.LINEAR_PCM
    silence = b"\xff" * 4000 if rate == 8000 else b"\x00" * (rate // 2 * 2)
    response = service.offline_recognize(
        silence + data + silence, riva.client.RecognitionConfig(encoding=encoding, sample_rate_hertz=rate)
    )
    return " ".join(r.alternatives[0].transcript for r in response.results)


async def test_first_chunk_arrives_well_before_the_last(tts_url: str) -> None:
    async with httpx.AsyncClient(base_url=tts_url, timeout=60, headers=speech_headers("tests")) as client:
        status, headers, chunks = await _stream(client, {"input": LONG_TEXT, "sample_rate": 16000})
    assert status == 200 and headers["x-sample-rate"] == "16000"
    first, last = chunks[0][0], chunks[-1][0]
    audio_s = sum(len(c) for _, c in chunks) / 2 / 16000
    assert len(chunks) >= 4, "the text goes out piece by piece"
    assert first < last / 3, f"first audio at {first:.3f}s, last at {last:.3f}s"
    assert audio_s > 10, audio_s


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
async def test_each_sample_rate_is_right(tts_url: str, asr_server: AsrServer, rate: int) -> None:
    text = "Your appointment is confirmed for Tuesday morning."
    async with httpx.AsyncClient(base_url=tts_url, timeout=60, headers=speech_headers("tests")) as client:
        status, headers, chunks = await _stream(client, {"input": text, "sample_rate": rate})
        wav_status, wav_headers, wav_chunks = await _stream(
            client, {"input": text, "sample_rate": rate, "response_format": "wav"}
        )
    assert status == 200 and headers["x-sample-rate"] == str(rate) and headers["content-type"] == "audio/pcm"
    pcm = b"".join(c for _, c in chunks)
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    duration = samples.size / rate
    # The same sentence lasts ~2.9 s whatever the rate: a wrong rate would stretch or squeeze it.
    assert 2.2 < duration < 3.8, duration
    # Energy sits in the speech band, and nothing above the output's Nyquist frequency was aliased in.
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    speech_band = spectrum[(freqs > 100) & (freqs < 3400)].sum() / spectrum.sum()
    assert speech_band > 0.8, speech_band
    # And it is intelligible at that rate.
    if rate in (8000, 16000):
        assert wer(text, _transcribe(asr_server, pcm, rate)) <= WER_BOUND
    wav = b"".join(c for _, c in wav_chunks)
    assert wav_status == 200 and wav_headers["content-type"] == "audio/wav"
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert struct.unpack("<I", wav[24:28])[0] == rate


async def test_voices_are_listed(tts_url: str) -> None:
    async with httpx.AsyncClient(base_url=tts_url, headers=speech_headers("tests")) as client:
        voices = (await client.get("/v1/voices")).json()["data"]
    assert {"id": "en_US-joe-medium", "engine": "piper", "cloned": False}.items() <= voices[0].items()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": ""}, 400, "input is empty"),
        ({"input": "   "}, 400, "input is empty"),
        ({"input": "?!..."}, 400, "no speakable text"),
        ({"input": "a" * 5000}, 413, "limit is 4096"),
        ({"input": "hello", "voice": "alloy"}, 400, "unknown voice 'alloy'"),
        ({"input": "hello", "sample_rate": 11025}, 400, "sample_rate 11025"),
        ({"input": "hello", "response_format": "mp3"}, 400, "response_format 'mp3'"),
        ({"input": "hello", "speed": 5}, 400, "speed"),
        ({"input": "hello", "model": "xtts"}, 400, "model 'xtts' is not served here"),
        ({"voice": "en_US-joe-medium"}, 400, "input"),
    ],
)
async def test_bad_speech_requests_get_clear_errors(tts_url: str, body: dict, status: int, message: str) -> None:
    async with httpx.AsyncClient(base_url=tts_url, headers=speech_headers("tests")) as client:
        resp = await client.post("/v1/audio/speech", json=body)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]["message"]


async def test_voice_management_errors(tts_url: str) -> None:
    token = mint_service_token(os.environ["SERVICE_TOKEN_SECRET"], "backend", org="org-a")  # clones are an org's
    async with httpx.AsyncClient(base_url=tts_url, headers={"Authorization": f"Bearer {token}"}) as client:
        text_upload = await client.post(
            "/v1/voices", files={"file": ("me.wav", b"definitely not audio " * 20)}, data={"name": "me"}
        )
        builtin = await client.delete("/v1/voices/en_US-joe-medium")
        missing = await client.delete("/v1/voices/nobody")
    # This server runs piper only: cloning is refused with the reason before the upload is even read.
    assert text_upload.status_code == 400 and "xtts" in text_upload.json()["error"]["message"]
    assert builtin.status_code == 400 and "built-in" in builtin.json()["error"]["message"]
    assert missing.status_code == 404


async def test_four_simultaneous_streams(tts_url: str, asr_server: AsrServer) -> None:
    texts = [
        "Please hold while I check the calendar.",
        "Your order will arrive on Friday.",
        "What are your opening hours?",
        "Thank you for calling, goodbye.",
    ]
    async with httpx.AsyncClient(base_url=tts_url, timeout=60, headers=speech_headers("tests")) as client:
        results = await asyncio.gather(*(_stream(client, {"input": t, "sample_rate": 8000}) for t in texts))
    assert [status for status, _, _ in results] == [200] * len(texts)
    heard = [_transcribe(asr_server, b"".join(c for _, c in chunks), 8000) for _, _, chunks in results]
    # Each stream carries its own sentence (crossed or garbled streams score near 1.0) ...
    for text, hypothesis in zip(texts, heard, strict=True):
        assert wer(text, hypothesis) <= 0.5, (text, hypothesis)
    # ... and together they are as intelligible as single requests. Pooled over the 23 words, because Piper's
    # sampling noise makes one five-word sentence score 0.4 for a single mishearing ("goodbye" -> "bye bye").
    pooled = sum(wer(t, h) * len(normalize(t)) for t, h in zip(texts, heard, strict=True)) / sum(
        len(normalize(t)) for t in texts)
    assert pooled <= WER_BOUND, list(zip(texts, heard, strict=True))


async def test_client_that_goes_away_frees_the_server(tts_url: str) -> None:
    async with httpx.AsyncClient(base_url=tts_url, timeout=60, headers=speech_headers("tests")) as client:
        async with client.stream("POST", "/v1/audio/speech", json={"input": LONG_TEXT * 3}) as resp:
            async for _ in resp.aiter_bytes():
                break  # hang up after the first audio
        for _ in range(50):
            health = (await client.get("/health")).json()
            if health["active_streams"] == 0:
                break
            await asyncio.sleep(0.1)
        assert health == {**health, "status": "ok", "active_streams": 0}
        metrics = (await client.get("/metrics")).text
    assert "tts_time_to_first_audio_seconds_bucket" in metrics and "tts_real_time_factor" in metrics
