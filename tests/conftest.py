"""Session-wide real servers for the tests.

FerretDB and MinIO are started once per pytest session on free loopback ports with data in a temporary state
folder, unless MONGODB_URI and S3_ENDPOINT point at running ones. The speech servers (ASR, TTS, LLM) are started
once per session too, only when a test asks for them, and shared by every suite (speech, voice, ...).
Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import STARTED, AsrServer, run_asr, server_env, start_process

from voicectl.data_services import DataServices, ensure_dev_secrets
from voicectl.launch import embed_process, llm_process, tts_process
from voicectl.procs import free_port

# Under CI a skipped test is a suite that did not run: only tests marked `gpu` may skip there (no GPU on CI).
_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


_LOG_OFFSETS = pytest.StashKey[dict[Path, int]]()
# Plain-text lines (loguru, logging, a crash on stderr) worth showing; JSON lines go by their "level".
_PLAIN_TROUBLE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^Traceback|^\w+(Error|Exception)\b|FATAL|Killed|Segmentation")
_LOG_LINES = 25  # per server


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_OFFSETS] = {p.log_file: p.log_file.stat().st_size for p in STARTED if p.log_file.exists()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if _CI and report.skipped and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where only GPU tests may skip: {reason}"
    if report.failed and report.when in ("setup", "call"):
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for proc in {p.log_file: p for p in STARTED}.values():
            lines = _log_trouble(proc.log_file, offsets.get(proc.log_file, 0))
            if lines:
                report.sections.append((f"{proc.name} server: warnings and errors during this test",
                                        "\n".join(lines)))


def _log_trouble(log: Path, offset: int) -> list[str]:
    """The warning and error lines a server logged since `offset`, the last few, shortened: enough to tell a slow
    or failing server from a wrong test."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    picked: list[str] = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            if str(entry.get("level", "")).lower() not in {"warning", "error", "critical"}:
                continue
            extra = {k: v for k, v in entry.items() if k not in {"ts", "level", "service", "logger", "msg",
                                                                 "color_message"}}
            line = (f"{str(entry.get('ts', ''))[11:23]} {str(entry['level']).upper()} {entry.get('logger', '')}: "
                    f"{entry.get('msg', '')} {json.dumps(extra) if extra else ''}")
        elif not _PLAIN_TROUBLE.search(line):
            continue
        picked.append(line[:400])
    return picked[-_LOG_LINES:]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line that says what did not run and why, so a green run cannot hide a skipped suite."""
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = sorted({r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr) for r in skipped})
    terminalreporter.write_line(f"[skips] {len(skipped)} skipped" + (": " + "; ".join(reasons) if reasons else ""))


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state")
    os.environ["VOICEAGENT_STATE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def data_services(state_dir: Path) -> Iterator[dict[str, str]]:
    """Starts real FerretDB + MinIO and exports their endpoints and dev secrets into os.environ."""
    for key, value in ensure_dev_secrets(state_dir).items():
        os.environ.setdefault(key, value)
    services = DataServices.from_env(state_dir, ephemeral_ports=True)
    env = services.start()
    os.environ.update(env)
    os.environ.setdefault("MONGODB_DB", f"test_{os.getpid()}")
    try:
        yield {**env, "MONGODB_DB": os.environ["MONGODB_DB"]}
    finally:
        services.stop()


@pytest.fixture(scope="session")
def speech_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech-state")


@pytest.fixture(scope="session")
def tts_url(speech_state: Path) -> Iterator[str]:
    port = free_port()
    # Voice management needs the platform's service tokens; the data services keep this secret if set first.
    secret = os.environ.setdefault("SERVICE_TOKEN_SECRET", secrets.token_urlsafe(48))
    proc = start_process(tts_process(speech_state / "tts", port=port,
                                     env=server_env(speech_state, SERVICE_TOKEN_SECRET=secret)))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def asr_server(speech_state: Path) -> Iterator[AsrServer]:
    # Interims are shed while decodes are slow (a busy machine); tests check that they work, so always allow them.
    yield from run_asr(speech_state, "asr", ASR_INTERIM_MAX_DECODE_S="30")


@pytest.fixture(scope="session")
def llm_url(speech_state: Path) -> Iterator[str]:
    port = free_port()
    proc = start_process(llm_process(speech_state / "llm", port=port,
                                     env=server_env(speech_state, LLM_N_CTX="2048")))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def embed_url(speech_state: Path) -> Iterator[str]:
    """The embedded embeddings server (all-MiniLM-L6-v2), as an OpenAI-compatible base URL."""
    port = free_port()
    proc = start_process(embed_process(speech_state / "embed", port=port, env=server_env(speech_state)))
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.stop()
