"""Local models loaded once per process and shared by every call (Silero VAD, smart-turn v3.2).

Pipecat's analyzers load their ONNX model in their constructor, i.e. once per call. Here the ONNX sessions are
loaded once (an InferenceSession is safe to run from several threads) and each call gets a light analyzer with its
own stream state, plus one small shared thread pool instead of a thread per analyzer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

import numpy as np
import onnxruntime as ort
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from speech.common.onnx_int8 import exact_int8

SMART_TURN_MODEL = "smart-turn-v3.2-cpu.onnx"


def _package_file(package: str, name: str) -> str:
    return str(resources.files(package).joinpath(name))


def smart_turn_model_path() -> str:
    """The smart-turn ONNX file that ships inside pipecat."""
    return _package_file("pipecat.audio.turn.smart_turn.data", SMART_TURN_MODEL)


# After this many gated (near-silent) windows in a row the model's recurrent state is cleared, so speech after
# a silence is scored from a clean state, as after Pipecat's own periodic reset.
_GATE_RESET_WINDOWS = 16


def _nice_thread(nice: int) -> None:
    """Lowers the calling thread's priority (Linux: niceness is per thread): the scheduler then gives the event
    loop's thread the core whenever it wants it, and the model threads what it leaves idle."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    """Silero VAD with a shared ONNX session; the recurrent state stays per call.

    With `gate_dbfs` set, while the caller is quiet a 32 ms window whose RMS is below it scores 0 without running
    the model (~0.3 ms of CPU each, all call long, is the largest fixed cost of a call). Silero itself scores such
    windows near 0; speech is 30-60 dB above that level on a phone line, so only line noise or silence is skipped.
    """

    def __init__(self, session: ort.InferenceSession, executor: ThreadPoolExecutor, *,
                 params: VADParams | None = None, gate_dbfs: float | None = None, on_loop: bool = False) -> None:
        VADAnalyzer.__init__(self, params=params)
        self._on_loop = on_loop
        self._executor.shutdown(wait=False)  # the base made a thread per analyzer; use the shared pool
        self._executor = executor
        model = SileroOnnxModel.__new__(SileroOnnxModel)
        model.session = session
        model.sample_rates = [8000, 16000]
        model.reset_states()
        self._model = model
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        # Compared against the sum of squares of int16 samples: no square root or float conversion per window.
        self._gate_energy = None if gate_dbfs is None else (32768.0 * 10 ** (gate_dbfs / 20)) ** 2
        self._gated_run = 0
        self.gated_windows = 0

    async def cleanup(self) -> None:
        """The pool is shared by every call: never shut it down here (the base class would)."""

    def voice_confidence(self, buffer: bytes) -> float:
        # Only while quiet: during speech Silero's own hangover decides when it ends, exactly as without a gate.
        if self._gate_energy is not None and self._vad_state == VADState.QUIET:
            samples = np.frombuffer(buffer, np.int16).astype(np.float32)
            if float(np.dot(samples, samples)) < self._gate_energy * samples.size:
                self.gated_windows += 1
                self._gated_run += 1
                if self._gated_run == _GATE_RESET_WINDOWS:
                    self._model.reset_states()
                return 0.0
            self._gated_run = 0
        return super().voice_confidence(buffer)  # type: ignore[no-any-return]

    def _get_smoothed_volume(self, audio: bytes) -> float:
        # Pipecat gates speech on a loudness measure over a 400 ms window (BS.1770), which lags speech onset
        # by several hundred ms on phone audio. With min_volume 0 the gate is off: skip measuring it too.
        if self._params.min_volume <= 0:
            return 1.0
        return float(super()._get_smoothed_volume(audio))

    async def analyze_audio(self, buffer: bytes) -> VADState:
        if self._on_loop:  # no thread hop: a gated window costs an RMS, a Silero window ~0.3 ms
            return self._run_analyzer(buffer)
        # Calls for one stream are sequential, so a shared pool keeps each stream's state consistent.
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run_analyzer, buffer)


class SharedSmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """smart-turn v3.2 (the ONNX model shipped in pipecat) with a shared session and thread pool."""

    def __init__(self, session: ort.InferenceSession, executor: ThreadPoolExecutor, *,
                 params: SmartTurnParams | None = None) -> None:
        BaseSmartTurn.__init__(self, params=params)
        self._log_data = False
        self._session = session
        self._shared_executor = executor

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        return self._shared_executor


class SharedModels:
    def __init__(self, smart_turn: bool = True, threads: int = 2, vad_gate_dbfs: float | None = None,
                 vad_on_loop: bool = False, thread_nice: int = 0) -> None:
        self.vad_gate_dbfs = vad_gate_dbfs
        self.vad_on_loop = vad_on_loop
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        self.silero = ort.InferenceSession(
            _package_file("pipecat.audio.vad.data", "silero_vad.onnx"),
            providers=["CPUExecutionProvider"], sess_options=opts,
        )
        self.smart_turn: ort.InferenceSession | None = None
        if smart_turn:
            st_opts = ort.SessionOptions()
            st_opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            st_opts.inter_op_num_threads = 1
            st_opts.intra_op_num_threads = 1
            st_opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            exact_int8(st_opts)  # int8: the same answers on x86 CPUs without VNNI (speech/common/onnx_int8.py)
            self.smart_turn = ort.InferenceSession(
                smart_turn_model_path(),
                providers=["CPUExecutionProvider"], sess_options=st_opts,
            )
        init = functools.partial(_nice_thread, thread_nice) if thread_nice else None
        self.vad_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vad", initializer=init)
        self.turn_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn", initializer=init)

    def vad(self, params: VADParams) -> SharedSileroVADAnalyzer:
        return SharedSileroVADAnalyzer(self.silero, self.vad_pool, params=params, gate_dbfs=self.vad_gate_dbfs,
                                       on_loop=self.vad_on_loop)

    def turn_analyzer(self, params: SmartTurnParams | None = None) -> SharedSmartTurnAnalyzer | None:
        if self.smart_turn is None:
            return None
        return SharedSmartTurnAnalyzer(self.smart_turn, self.turn_pool, params=params)

    def warm_up(self) -> dict[str, Any]:
        """One inference each, so the first call does not pay for ONNX's lazy initialisation."""
        vad = self.vad(VADParams())
        vad.set_sample_rate(8000)
        vad._run_analyzer(np.zeros(256, dtype=np.int16).tobytes())
        result: dict[str, Any] = {"vad": True}
        turn = self.turn_analyzer()
        if turn is not None:
            turn.set_sample_rate(8000)
            result["smart_turn"] = turn._predict_endpoint(np.zeros(8000, dtype=np.float32))
        return result

    def close(self) -> None:
        self.vad_pool.shutdown(wait=False)
        self.turn_pool.shutdown(wait=False)
