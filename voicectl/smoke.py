"""`voicectl smoke`: one real request to each embedded engine, the last step of bootstrap.

Why: a llama.cpp build made with another CPU's native flags segfaulted in `llama_decode` on its first chat
completion while its /health stayed green, so `make run` started "healthy" and every call ended in the canned
apology. Health checks prove a process is up; only a real chat completion, a real synthesis and a real decode
prove the engine works on this CPU. Each server runs as its own process, so a crash is caught and named here
instead of taking the check down with it.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from voicectl.binaries import cache_dir
from voicectl.launch import asr_process, llm_process, tts_process
from voicectl.procs import ManagedProcess, ServiceError, free_port
from voicectl.speech_auth import riva_metadata, speech_headers
from voicectl.supervise import exit_description

SENTENCE = "Please call me back tomorrow morning."
REINSTALL = "reinstall the Python environment: `rm -rf .venv && make run`"


class SmokeFailure(RuntimeError):
    """An engine that does not work on this machine, with the fix."""


@dataclass(frozen=True)
class EngineResult:
    engine: str
    detail: str


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def _failure(engine: str, proc: ManagedProcess, what: str, fix: str) -> SmokeFailure:
    code = None
    if proc.proc is not None:
        # A crashing server drops the connection a moment before it is reaped: give it that moment.
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = proc.proc.wait(timeout=3)
    how = f"crashed ({exit_description(code)})" if code is not None else "answered wrongly"
    return SmokeFailure(f"{engine} {how}: {what}\nFix: {fix}\nLast lines of its log ({proc.log_file}):\n"
                        f"{proc.tail_log(20)}")


def check_llm(base_url: str) -> str:
    """One chat completion; the reply must contain words."""
    resp = httpx.post(f"{base_url}/v1/chat/completions", timeout=120, headers=speech_headers(), json={
        "messages": [{"role": "user", "content": "Say hello to the caller in one short sentence."}],
        "max_tokens": 24, "temperature": 0.0})
    resp.raise_for_status()
    text = str(resp.json()["choices"][0]["message"]["content"] or "")
    if not _words(text):
        raise ValueError(f"the chat completion has no words: {text!r}")
    return text.strip()


def check_tts(base_url: str) -> bytes:
    """One synthesis of SENTENCE; returns 16 kHz mono WAV bytes with audible speech."""
    resp = httpx.post(f"{base_url}/v1/audio/speech", timeout=60, headers=speech_headers(),
                      json={"input": SENTENCE, "sample_rate": 16000, "response_format": "pcm"})
    resp.raise_for_status()
    pcm = resp.content
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    if samples.size < 8000 or int(np.abs(samples.astype(np.int32)).max()) < 1000:
        raise ValueError(f"the synthesis is silent or shorter than half a second ({len(pcm)} bytes)")
    return wav_16k(pcm)


def wav_16k(pcm: bytes) -> bytes:
    """16 kHz mono s16le samples as a WAV file (the ASR server reads the format from the header)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    return out.getvalue()


def check_asr(address: str, wav: bytes) -> str:
    """One offline decode of the synthesised SENTENCE; most of its words must come back."""
    import riva.client  # heavy (gRPC, protobuf): only for this check

    asr = riva.client.ASRService(riva.client.Auth(uri=address, metadata_args=riva_metadata()))
    result = asr.offline_recognize(wav, riva.client.RecognitionConfig(language_code="en-US"))
    text = " ".join(r.alternatives[0].transcript for r in result.results if r.alternatives)
    expected = _words(SENTENCE)
    if len(expected & _words(text)) < len(expected) * 0.6:
        raise ValueError(f"decoded {text!r} for {SENTENCE!r}")
    return text.strip()


def _run(engine: str, proc: ManagedProcess, fix: str, check: Callable[[], str]) -> EngineResult:
    try:
        proc.start()
    except ServiceError as exc:
        raise SmokeFailure(f"{engine} did not start: {exc}\nFix: {fix}") from exc
    try:
        return EngineResult(engine, check())
    except (httpx.HTTPError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise _failure(engine, proc, str(exc) or type(exc).__name__, fix) from exc
    finally:
        proc.stop()


def run_smoke(state: Path) -> list[EngineResult]:
    """Starts the LLM, TTS and ASR servers one at a time on free ports and checks each; raises SmokeFailure."""
    env = {"VOICEAGENT_STATE_DIR": str(state), "LOG_JSON": "false"}
    results: list[EngineResult] = []
    llm_port = free_port()
    llm = llm_process(state / "llm", port=llm_port, env={**env, "LLM_N_CTX": "1024"})
    llm.start_timeout = 180
    results.append(_run(
        "the embedded LLM (llama.cpp, SmolLM2)", llm,
        f"the llama.cpp build does not run on this CPU. Remove the cached build and the environment "
        f"(`rm -rf {cache_dir()}/wheels/llama-cpp-python-* .venv`) and run `make run` again, which rebuilds it "
        f"portably; or point LLM_BASE_URL at another OpenAI-compatible server.",
        lambda: check_llm(f"http://127.0.0.1:{llm_port}")))
    tts_port = free_port()
    tts = tts_process(state / "tts", port=tts_port, env=env)
    wav = b""

    def tts_check() -> str:
        nonlocal wav
        wav = check_tts(f"http://127.0.0.1:{tts_port}")
        return f"{len(wav)} bytes of speech"

    results.append(_run("the TTS server (Piper)", tts, REINSTALL, tts_check))
    asr_port, asr_health = free_port(), free_port()
    asr = asr_process(state / "asr", port=asr_port, health_port=asr_health, env=env)
    asr.start_timeout = 120
    results.append(_run("the ASR server (faster-whisper)", asr, REINSTALL,
                        lambda: check_asr(f"127.0.0.1:{asr_port}", wav)))
    return results


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="voiceagent-smoke-") as tmp:
        try:
            results = run_smoke(Path(tmp))
        except SmokeFailure as exc:
            print(f"[smoke] FAILED: {exc}")
            return 1
    for result in results:
        print(f"[smoke] ok  {result.engine}: {result.detail[:80]!r}")
    return 0
