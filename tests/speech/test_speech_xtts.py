"""XTTS v2: refused clearly where it cannot run; loaded, cloned and streamed where CUDA and weights exist (gpu)."""

from __future__ import annotations

import io
import os
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from speechtest_helpers import gpu_available

from speech.tts.config import TtsSettings
from speech.tts.engines import EngineUnavailable
from speech.tts.engines.xtts_engine import check_weights
from voicectl.procs import ManagedProcess, ServiceError, free_port, http_ok


def test_missing_weights_are_named(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="TTS_XTTS_MODEL_DIR is not set"):
        check_weights(None)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EngineUnavailable, match="lacks model.pth, vocab.json"):
        check_weights(tmp_path)


def test_server_with_xtts_but_no_weights_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    proc = ManagedProcess(
        "tts-xtts",
        [sys.executable, "-m", "speech.tts"],
        tmp_path,
        ports=[port],
        env={"TTS_PORT": str(port), "TTS_ENGINES": "piper,xtts", "TTS_XTTS_MODEL_DIR": "", "LOG_JSON": "true",
             "VOICEAGENT_STATE_DIR": str(tmp_path)},
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
        start_timeout=60,
    )
    with pytest.raises(ServiceError, match="exited"):
        proc.start()
    log = proc.log_file.read_text()
    assert "TTS engine cannot start" in log and "TTS_XTTS_MODEL_DIR" in log
    assert "import torch" not in log


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CUDA, coqui-tts and XTTS v2 weights in TTS_XTTS_MODEL_DIR")
def test_xtts_loads_clones_and_streams(tmp_path: Path) -> None:
    from speech.tts.engines.xtts_engine import XttsEngine

    settings = TtsSettings(
        tts_engines=["xtts"], tts_xtts_model_dir=Path(os.environ["TTS_XTTS_MODEL_DIR"]), tts_voices_dir=tmp_path
    )
    engine = XttsEngine.load(settings)
    rng = np.random.default_rng(0)
    t = np.arange(24000 * 4) / 24000
    clip = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * rng.standard_normal(t.size) * 0.1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(24000)
        wf.writeframes(clip.tobytes())
    wav = tmp_path / "clone-me.wav"
    wav.write_bytes(buf.getvalue())
    info = engine.add_voice("clone-me", "Clone me", wav, "en", "org-a")
    assert info.cloned and info.id in {v.id for v in engine.voices()}
    chunks = list(engine.synthesize("Hello, this is a streaming test.", "clone-me", 1.0, "en", threading.Event()))
    assert len(chunks) >= 2 and sum(c.size for c in chunks) > 24000 * 0.5
    engine.delete_voice("clone-me")
    assert "clone-me" not in {v.id for v in engine.voices()}
    engine.close()
