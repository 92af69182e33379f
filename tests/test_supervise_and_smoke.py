"""`voicectl run` keeps its processes alive, and bootstrap's smoke test names an engine that crashes or answers
wrongly. Real processes throughout: a crash is a real exit or a real SIGSEGV, not a mocked return value."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from stack_helpers import AsrServer

from voicectl import smoke
from voicectl.procs import ManagedProcess, free_port, http_ok
from voicectl.speech_auth import speech_headers
from voicectl.supervise import Supervisor

# A server that dies with SIGSEGV on its first POST, as the natively built llama.cpp did in llama_decode while its
# /health stayed green.
SEGFAULTING_SERVER = """
import http.server, os, signal, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def do_POST(self):
        os.kill(os.getpid(), signal.SIGSEGV)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _flaky(tmp_path: Path, crashes: int) -> ManagedProcess:
    """Exits with code 3 on each of its first `crashes` starts, then stays up."""
    counter = tmp_path / "starts"
    script = (f"import pathlib, sys, time\np = pathlib.Path({str(counter)!r})\n"
              f"n = int(p.read_text()) if p.exists() else 0\np.write_text(str(n + 1))\n"
              f"if n < {crashes}:\n    time.sleep(0.2); sys.exit(3)\ntime.sleep(60)\n")
    return ManagedProcess("flaky", [sys.executable, "-c", script], tmp_path / "run")


def _supervise(proc: ManagedProcess, stop_after_s: float, **kwargs: object) -> tuple[int, list[str]]:
    said: list[str] = []
    stop = threading.Event()
    timer = threading.Timer(stop_after_s, stop.set)
    timer.start()
    try:
        proc.start()
        code = Supervisor([proc], backoff_s=(0.1, 0.2), poll_s=0.05, say=said.append, **kwargs).run(stop)  # type: ignore[arg-type]
    finally:
        timer.cancel()
        proc.stop()
    return code, said


def test_a_crashed_process_is_restarted_with_back_off_and_the_event_printed(tmp_path: Path) -> None:
    proc = _flaky(tmp_path, crashes=2)
    code, said = _supervise(proc, stop_after_s=4.0)
    assert code == 0, said
    assert int((tmp_path / "starts").read_text()) == 3
    assert sum("exited (code 3)" in line for line in said) == 2, said
    assert sum("restarted" in line for line in said) == 2, said


def test_repeated_crashes_stop_the_stack_with_the_log_tail(tmp_path: Path) -> None:
    proc = _flaky(tmp_path, crashes=100)
    code, said = _supervise(proc, stop_after_s=30.0, max_crashes=3)
    assert code == 1
    assert "crashed 3 times" in said[-1] and "stopping the stack" in said[-1], said
    assert str(proc.log_file) in said[-1]


def test_smoke_names_an_llm_that_segfaults_on_its_first_completion(tmp_path: Path) -> None:
    port = free_port()
    proc = ManagedProcess("llm", [sys.executable, "-c", SEGFAULTING_SERVER, str(port)], tmp_path,
                          ports=[port], ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"))
    with pytest.raises(smoke.SmokeFailure) as failure:
        smoke._run("the embedded LLM", proc, "rebuild it", lambda: smoke.check_llm(f"http://127.0.0.1:{port}"))
    message = str(failure.value)
    assert "the embedded LLM crashed (signal SIGSEGV)" in message and "Fix: rebuild it" in message


def test_smoke_checks_pass_against_the_real_engines(llm_url: str, tts_url: str, asr_server: AsrServer) -> None:
    assert smoke.check_llm(llm_url)
    wav = smoke.check_tts(tts_url)
    assert smoke.check_asr(asr_server.address, wav)


def test_smoke_refuses_a_wrong_transcript(asr_server: AsrServer, tts_url: str) -> None:
    """Speech of another sentence must not pass as the smoke sentence: the check compares words, not 'any text'."""
    import httpx

    other = httpx.post(f"{tts_url}/v1/audio/speech", timeout=60, headers=speech_headers("tests"), json={
        "input": "The weather is sunny and warm today.", "sample_rate": 16000, "response_format": "pcm"})
    other.raise_for_status()
    with pytest.raises(ValueError, match="decoded"):
        smoke.check_asr(asr_server.address, smoke.wav_16k(other.content))
