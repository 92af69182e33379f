"""The ASR server through NVIDIA's own client (riva.client), with speech from the real TTS server."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import riva.client
from riva.client.proto import health_pb2, health_pb2_grpc
from riva.client.proto import riva_asr_pb2 as rasr
from speechtest_helpers import PHRASES, WER_BOUND, AsrServer, Utterances, wer

from voicectl.speech_auth import riva_metadata


def _asr(server: AsrServer) -> riva.client.ASRService:
    return riva.client.ASRService(riva.client.Auth(uri=server.address, metadata_args=riva_metadata("tests")))


def _streaming_config(
    encoding: riva.client.AudioEncoding = riva.client.AudioEncoding.MULAW,
    rate: int = 8000,
    interim: bool = False,
    **config: object,
) -> rasr.StreamingRecognitionConfig:
    return riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(
            encoding=encoding, sample_rate_hertz=rate, language_code="en-US", **config
        ),
        interim_results=interim,
    )


def _chunks(data: bytes, size: int, pace_s: float = 0.0) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        if pace_s:
            time.sleep(pace_s)
        yield data[i : i + size]


def _finals(responses: Iterator[rasr.StreamingRecognizeResponse]) -> tuple[list[str], list[str]]:
    finals: list[str] = []
    interims: list[str] = []
    for response in responses:
        for result in response.results:
            (finals if result.is_final else interims).append(result.alternatives[0].transcript)
    return finals, interims


def _assert_transcripts(expected: tuple[str, ...] | list[str], got: list[str]) -> None:
    assert len(got) == len(expected), f"expected {len(expected)} finals, got {got}"
    for ref, hyp in zip(expected, got, strict=True):
        assert wer(ref, hyp) <= WER_BOUND, f"WER {wer(ref, hyp):.2f} > {WER_BOUND}: {ref!r} -> {hyp!r}"


def test_streaming_mulaw_8k_gives_one_final_per_utterance(asr_server: AsrServer, utterances: Utterances) -> None:
    responses = _asr(asr_server).streaming_response_generator(
        _chunks(utterances.mulaw_8k, 160), _streaming_config(enable_automatic_punctuation=True)
    )
    finals, _ = _finals(responses)
    _assert_transcripts(utterances.texts, finals)
    assert finals[0][0].isupper() and finals[0].rstrip()[-1] in ".?!", "punctuation was asked for"


def test_streaming_linear_pcm_16k_without_punctuation(asr_server: AsrServer, utterances: Utterances) -> None:
    responses = _asr(asr_server).streaming_response_generator(
        _chunks(utterances.pcm16_16k, 3200), _streaming_config(riva.client.AudioEncoding.LINEAR_PCM, 16000)
    )
    finals, _ = _finals(responses)
    _assert_transcripts(utterances.texts, finals)
    assert all(f == f.lower() and "." not in f and "?" not in f for f in finals), finals


def test_interim_results_arrive_before_the_final(asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    text = PHRASES[3]  # the longest phrase (~5 s), streamed in real time so interims have time to happen
    responses = _asr(asr_server).streaming_response_generator(
        _chunks(single_phrases[text], 800, pace_s=0.1), _streaming_config(interim=True)
    )
    finals, interims = _finals(responses)
    _assert_transcripts([text], finals)
    assert interims, "interim_results=True on an idle server gives interim results"


def test_interim_results_off_means_finals_only(asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    text = PHRASES[3]
    responses = _asr(asr_server).streaming_response_generator(
        _chunks(single_phrases[text], 800, pace_s=0.05), _streaming_config(interim=False)
    )
    finals, interims = _finals(responses)
    _assert_transcripts([text], finals)
    assert interims == []


def test_riva_wav_file_iterator_and_offline_recognize(asr_server: AsrServer, utterances: Utterances, tmp_path) -> None:
    wav_path = tmp_path / "call.wav"
    with wave.open(str(wav_path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(8000)
        wf.writeframes(utterances.pcm16_8k)
    asr = _asr(asr_server)
    # riva.client's own file iterator sends the WAV header in the first chunk; the server reads the format from it.
    config = _streaming_config(riva.client.AudioEncoding.LINEAR_PCM, 8000)
    riva.client.add_audio_file_specs_to_config(config, wav_path)
    with riva.client.AudioChunkFileIterator(wav_path, 1600) as chunks:
        finals, _ = _finals(asr.streaming_response_generator(chunks, config))
    _assert_transcripts(utterances.texts, finals)

    offline = asr.offline_recognize(
        wav_path.read_bytes(), riva.client.RecognitionConfig(language_code="en-US", enable_word_time_offsets=True)
    )
    got = [r.alternatives[0].transcript for r in offline.results]
    _assert_transcripts(utterances.texts, got)
    words = offline.results[1].alternatives[0].words
    assert words and words[0].start_time >= 1000 * (utterances.speech_end_s[0]), "word times are call-relative"


def test_a_stream_may_ask_for_pause_transcripts(asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    """With interims off, `pause_transcripts` still sends the decode made at the caller's pause, before the final and
    with the final's words (a speculative reply starts on it, pipelines/turns.py); stability 1 tells it apart."""
    text = PHRASES[0]
    config = _streaming_config(interim=False, custom_configuration={"pause_transcripts": "true"},
                               endpointing_config=rasr.EndpointingConfig(stop_history=1500))
    audio = single_phrases[text] + b"\xff" * 16000  # 2 s of silence, streamed in real time: the decode has time
    results = [result for response in _asr(asr_server).streaming_response_generator(
        _chunks(audio, 800, pace_s=0.1), config) for result in response.results]
    *pauses, final = results  # a pause between words may give one more (of the words before it)
    assert final.is_final and pauses and not any(r.is_final for r in pauses), results
    assert all(r.stability == 1.0 for r in pauses)
    assert pauses[-1].alternatives[0].transcript == final.alternatives[0].transcript
    _assert_transcripts([text], [final.alternatives[0].transcript])


def test_recognition_config_and_health(asr_server: AsrServer) -> None:
    asr = _asr(asr_server)
    response = asr.stub.GetRivaSpeechRecognitionConfig(rasr.RivaSpeechRecognitionConfigRequest(),
                                                      metadata=asr.auth.get_auth_metadata())
    (model,) = response.model_config
    assert model.model_name == "whisper-tiny.en"
    assert model.parameters["sample_rates"] == "8000,16000"
    health = health_pb2_grpc.HealthStub(asr.auth.channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="nvidia.riva.asr.RivaSpeechRecognition"))
    assert status.status == health_pb2.HealthCheckResponse.ServingStatus.SERVING
    with urllib.request.urlopen(f"{asr_server.health_url}/health") as resp:
        assert json.load(resp)["status"] == "ok"
    with urllib.request.urlopen(f"{asr_server.health_url}/metrics") as resp:
        text = resp.read().decode()
    assert "asr_final_latency_seconds" in text and "asr_real_time_factor" in text


@pytest.mark.parametrize(
    ("config", "audio", "message"),
    [
        (dict(sample_rate_hertz=44100), b"\x00\x01" * 800, "sample_rate_hertz 44100"),
        (dict(sample_rate_hertz=0), b"\x00\x01" * 800, "required"),
        (dict(encoding=riva.client.AudioEncoding.FLAC), b"\x00\x01" * 800, "FLAC"),
        (dict(), json.dumps({"hello": "this is not audio", "pad": "x" * 200}).encode(), "not audio"),
        (dict(), b"%PDF-1.7" + b"\x00" * 400, "PDF"),
        (dict(language_code="fr-FR"), b"\x00\x01" * 800, "language_code"),
        (dict(model="nemotron-asr-streaming"), b"\x00\x01" * 800, "unknown model"),
        (dict(custom_configuration={"interim_interval_ms": "10"}), b"\x00\x01" * 800, "interim_interval_ms"),
        (dict(custom_configuration={"pause_transcripts": "yes"}), b"\x00\x01" * 800, "pause_transcripts"),
    ],
)
def test_bad_requests_get_invalid_argument(asr_server: AsrServer, config: dict, audio: bytes, message: str) -> None:
    base = dict(encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000, language_code="en-US")
    streaming = riva.client.StreamingRecognitionConfig(config=riva.client.RecognitionConfig(**{**base, **config}))
    with pytest.raises(grpc.RpcError) as err:
        _finals(_asr(asr_server).streaming_response_generator(iter([audio]), streaming))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        _asr(asr_server).offline_recognize(audio, riva.client.RecognitionConfig(**{**base, **config}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_stream_without_config_is_refused(asr_server: AsrServer) -> None:
    asr = _asr(asr_server)
    requests = iter([rasr.StreamingRecognizeRequest(audio_content=b"\x00" * 320)])
    with pytest.raises(grpc.RpcError) as err:
        list(asr.stub.StreamingRecognize(requests, metadata=asr.auth.get_auth_metadata()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "streaming_config" in err.value.details()


def test_a_stream_may_ask_for_its_own_interim_cadence(asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    """A voicemail screen asks for interims every 0.5 s (pipelines/stt_chain.py); the transcript is unchanged."""
    text = PHRASES[3]
    config = _streaming_config(interim=True, custom_configuration={"interim_interval_ms": "500"})
    finals, _ = _finals(_asr(asr_server).streaming_response_generator(_chunks(single_phrases[text], 800, pace_s=0.1),
                                                                      config))
    _assert_transcripts([text], finals)


def test_word_boosting_is_accepted(asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    text = PHRASES[0]
    config = _streaming_config()
    riva.client.add_word_boosting_to_config(config, ["reschedule", "appointment"], 4.0)
    finals, _ = _finals(_asr(asr_server).streaming_response_generator(_chunks(single_phrases[text], 1600), config))
    _assert_transcripts([text], finals)


def test_four_simultaneous_streams(asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    texts = list(PHRASES[:4])
    start = threading.Barrier(len(texts))

    def run(text: str) -> list[str]:
        start.wait()
        responses = _asr(asr_server).streaming_response_generator(
            _chunks(single_phrases[text], 320, pace_s=0.005), _streaming_config(interim=True)
        )
        return _finals(responses)[0]

    with ThreadPoolExecutor(len(texts)) as pool:
        results = list(pool.map(run, texts))
    for text, finals in zip(texts, results, strict=True):
        _assert_transcripts([text], finals)


def test_overload_is_refused_with_resource_exhausted(small_asr_server: AsrServer, single_phrases: dict[str, bytes]) -> None:
    asr = _asr(small_asr_server)
    audio = single_phrases[PHRASES[3]]
    config = riva.client.RecognitionConfig(encoding=riva.client.AudioEncoding.MULAW, sample_rate_hertz=8000)

    def recognize(_: int) -> str:
        try:
            asr.offline_recognize(audio, config)
            return "OK"
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
            return "RESOURCE_EXHAUSTED"

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(recognize, range(6)))
    assert "OK" in codes and "RESOURCE_EXHAUSTED" in codes, codes

    # Streams beyond ASR_MAX_STREAMS=2 are refused at once; the two admitted ones still work.
    release = threading.Event()

    def held_stream() -> Iterator[bytes]:
        yield b"\xff" * 160
        release.wait(10)

    admitted = [asr.streaming_response_generator(held_stream(), _streaming_config()) for _ in range(2)]
    workers = ThreadPoolExecutor(2)
    futures = [workers.submit(_finals, r) for r in admitted]
    for _ in range(100):  # until the server holds both streams
        with urllib.request.urlopen(f"{small_asr_server.health_url}/health") as resp:
            if json.load(resp)["active_streams"] == 2:
                break
        time.sleep(0.1)
    with pytest.raises(grpc.RpcError) as err:
        _finals(asr.streaming_response_generator(iter([b"\xff" * 160]), _streaming_config()))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    release.set()
    for f in futures:
        assert f.result(timeout=10) == ([], [])
    workers.shutdown()
    with urllib.request.urlopen(f"{small_asr_server.health_url}/health") as resp:
        assert json.load(resp)["status"] == "ok", "the server survives overload"


def test_wav_header_with_unsupported_format_is_refused(asr_server: AsrServer) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(22050)
        wf.writeframes(b"\x00\x00" * 2205)
    with pytest.raises(grpc.RpcError) as err:
        _asr(asr_server).offline_recognize(buf.getvalue(), riva.client.RecognitionConfig())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "22050" in err.value.details()
