"""Silero VAD (the ONNX model shipped inside pipecat), one shared session, a small recurrent state per stream.

The ONNX session is thread-safe and costs ~0.3 ms per 32 ms window, so every stream scores its own audio with it;
only the recurrent state and the 32/64-sample context live per stream.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime

WINDOW_SAMPLES = {8000: 256, 16000: 512}
_CONTEXT_SAMPLES = {8000: 32, 16000: 64}
# As pipecat does: the recurrent state drifts during long non-speech (strongly at 8 kHz); reset it every ~2 s of
# clear quiet, never during speech.
_RESET_INTERVAL_S = 2.0
_RESET_MAX_PROB = 0.1
_RESET_QUIET_WINDOWS = 5


def silero_model_path() -> Path:
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pipecat is not installed; it ships the Silero VAD model the ASR server uses")
    path = Path(next(iter(spec.submodule_search_locations))) / "audio" / "vad" / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise RuntimeError(f"Silero VAD model not found at {path}")
    return path


class SileroModel:
    """The shared ONNX session."""

    def __init__(self, path: Path | None = None) -> None:
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path or silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def stream(self, sample_rate: int) -> SileroStream:
        return SileroStream(self, sample_rate)


class SileroStream:
    """Scores consecutive windows of one audio stream; keeps its own state."""

    def __init__(self, model: SileroModel, sample_rate: int) -> None:
        if sample_rate not in WINDOW_SAMPLES:
            raise ValueError(f"Silero VAD runs at 8000 or 16000 Hz, not {sample_rate}")
        self.model = model
        self.sample_rate = sample_rate
        self.window = WINDOW_SAMPLES[sample_rate]
        self._sr = np.array(sample_rate, dtype=np.int64)
        self._windows_since_reset = 0
        self._quiet_windows = 0
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT_SAMPLES[self.sample_rate]), dtype=np.float32)

    def score(self, window: np.ndarray, in_speech: bool) -> float:
        """Speech probability of one window of float32 samples (exactly `self.window` long)."""
        x = np.concatenate((self._context, window.reshape(1, -1)), axis=1)
        out, state = self.model.session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._state = state
        self._context = x[:, -self._context.shape[1] :]
        prob = float(out[0][0])
        self._windows_since_reset += 1
        self._quiet_windows = self._quiet_windows + 1 if prob < _RESET_MAX_PROB else 0
        if (
            not in_speech
            and self._quiet_windows >= _RESET_QUIET_WINDOWS
            and self._windows_since_reset * self.window >= _RESET_INTERVAL_S * self.sample_rate
        ):
            self.reset()
            self._windows_since_reset = 0
        return prob
