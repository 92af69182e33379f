"""The models shared by every call (pipelines/shared_models.py): the VAD's energy gate, on real synthesised speech."""

from __future__ import annotations

import numpy as np
import pytest
from stack_helpers import synthesize

HOURS = "Sorry, what are your opening hours on Saturday?"


@pytest.fixture(scope="module")
def caller_audio(tts_url: str) -> dict[str, bytes]:
    """The caller's phrase as 8 kHz PCM, synthesised by the real TTS server (Piper)."""
    return {"hours": synthesize(tts_url, HOURS)}


def test_vad_energy_gate_skips_quiet_windows_and_finds_the_same_speech(caller_audio: dict[str, bytes]) -> None:
    """Silence and faint line noise never reach Silero; the speech, with that around it, gives the same
    start and stop as without the gate."""
    from pipecat.audio.vad.vad_analyzer import VADParams, VADState

    from pipelines.shared_models import SharedModels

    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 3, 8000)).astype(np.int16).tobytes()  # ~-80 dBFS hiss, 1 s
    audio = b"\x00" * 16000 + noise + caller_audio["hours"] + noise + b"\x00" * 16000
    models = SharedModels(smart_turn=False)

    def states(gate_dbfs: float | None) -> tuple[list[tuple[int, VADState]], int]:
        models.vad_gate_dbfs = gate_dbfs
        vad = models.vad(VADParams(start_secs=0.15, stop_secs=0.2, min_volume=0.0))
        vad.set_sample_rate(8000)
        changes: list[tuple[int, VADState]] = []
        last = VADState.QUIET
        for i in range(0, len(audio) - 320, 320):  # 20 ms frames, as the carrier sends them
            state = vad._run_analyzer(audio[i:i + 320])
            if state != last and state in (VADState.SPEAKING, VADState.QUIET):
                changes.append((i // 320, state))
                last = state
        return changes, vad.gated_windows

    ungated, none_gated = states(None)
    gated, skipped = states(-55.0)
    models.close()
    assert none_gated == 0
    assert ungated and ungated[0][1] == VADState.SPEAKING and ungated[-1][1] == VADState.QUIET
    # The gate may only make a difference of a window or two at the edges of speech.
    assert len(gated) == len(ungated)
    assert all(a[1] == b[1] and abs(a[0] - b[0]) <= 2 for a, b in zip(gated, ungated, strict=True)), (gated, ungated)
    silent_windows = (16000 + 16000 + 2 * len(noise)) // 2 // 256
    assert skipped >= silent_windows * 0.9


async def test_vad_on_the_event_loop_finds_the_same_speech_without_a_thread(caller_audio: dict[str, bytes]) -> None:
    """VAD_ON_LOOP: the analyzer runs in the loop's own thread (no hand-off per caller frame) and gives the same
    state changes, frame by frame, as the shared thread pool."""
    import threading

    from pipecat.audio.vad.vad_analyzer import VADParams, VADState

    from pipelines.shared_models import SharedModels

    audio = b"\x00" * 8000 + caller_audio["hours"] + b"\x00" * 16000

    async def states(on_loop: bool) -> tuple[list[tuple[int, VADState]], set[int]]:
        models = SharedModels(smart_turn=False, vad_gate_dbfs=-55.0, vad_on_loop=on_loop)
        vad = models.vad(VADParams(start_secs=0.15, stop_secs=0.2, min_volume=0.0))
        vad.set_sample_rate(8000)
        threads: set[int] = set()
        confidence = vad.voice_confidence

        def traced(buffer: bytes) -> float:
            threads.add(threading.get_ident())
            return confidence(buffer)

        vad.voice_confidence = traced  # type: ignore[method-assign]
        changes: list[tuple[int, VADState]] = []
        last = VADState.QUIET
        for i in range(0, len(audio) - 640, 640):  # 40 ms frames, as the pipeline gets them
            state = await vad.analyze_audio(audio[i:i + 640])
            if state != last and state in (VADState.SPEAKING, VADState.QUIET):
                changes.append((i // 640, state))
                last = state
        models.close()
        return changes, threads

    pooled, pool_threads = await states(False)
    on_loop, loop_threads = await states(True)
    assert pooled and pooled[0][1] == VADState.SPEAKING and pooled[-1][1] == VADState.QUIET
    assert on_loop == pooled
    assert loop_threads == {threading.get_ident()}
    assert threading.get_ident() not in pool_threads
