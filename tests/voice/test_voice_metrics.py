"""The voice server's Prometheus /metrics after one real simulated call (real speech servers, backend, WebSockets):
the call is counted by carrier and outcome, its turn latencies land in the stage histograms, the output pacing
and event-loop series are there, and the active-calls gauge is back to 0."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from voicetest_helpers import Simulate, VoiceServer

from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

pytestmark = pytest.mark.timeout(240)


async def scrape(http: httpx.AsyncClient, voice_server: VoiceServer) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                                              float]:
    resp = await http.get(f"{voice_server.url}/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_one_call_moves_the_voice_metrics(simulate: Simulate, twilio_line: SimLine, http: httpx.AsyncClient,
                                                voice_server: VoiceServer, caller_audio: dict[str, bytes]) -> None:
    before = await scrape(http, voice_server)
    for name in ("voice_active_calls", "voice_to_voice_seconds_count", "voice_event_loop_lag_seconds_count",
                 "voice_gc_pause_seconds_count",
                 "voice_output_frame_lateness_seconds_count", "voice_output_underruns_total",
                 "voice_llm_first_token_seconds_count", "voice_tts_first_audio_seconds_count",
                 "voice_stt_final_after_vad_stop_seconds_count"):
        assert any(key[0] == name for key in before), f"{name} is not exported"

    script = CallScript(turns=[CallerTurn(audio=caller_audio["parking"], gap_s=0.3, label="q")], hangup_after_s=0.5)
    report = await simulate(twilio_line, script)
    assert report.answers and report.answers[0].first_audio is not None, "the question got no spoken answer"
    assert report.ended_by == "caller"

    # The session files its end (and the counters) after the socket closes: poll until it has.
    deadline = time.monotonic() + 20
    while True:
        after = await scrape(http, voice_server)
        done = value(after, "voice_calls_total", carrier="twilio", outcome="caller_hangup") \
            > value(before, "voice_calls_total", carrier="twilio", outcome="caller_hangup")
        if (done and value(after, "voice_active_calls") == 0) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert done, "the ended call was not counted by carrier and outcome"
    assert value(after, "voice_active_calls") == 0
    for name in ("voice_to_voice_seconds_count", "voice_llm_first_token_seconds_count",
                 "voice_tts_first_audio_seconds_count", "voice_stt_final_after_vad_stop_seconds_count",
                 "voice_turn_end_seconds_count"):
        assert value(after, name) > value(before, name), f"{name} did not move"
    assert value(after, "voice_to_voice_seconds_sum") > value(before, "voice_to_voice_seconds_sum")
    # The call's replies started before its turn ends (SPECULATIVE_LLM, on by default), counted at its end.
    assert {key for key in after if key[0] == "voice_speculative_replies_total"} >= {
        ("voice_speculative_replies_total", (("outcome", "confirmed"),)),
        ("voice_speculative_replies_total", (("outcome", "withdrawn"),))}, "not counted by outcome"
    # After each agent turn the embedded LLM evaluated the next turn's prompt ahead (LLM_PREFILL_NEXT_TURN, on
    # without an LLM_API_KEY): at least after the greeting and the answer.
    assert value(after, "voice_llm_prefills_total") >= value(before, "voice_llm_prefills_total") + 2
    # Greeting and answer went out paced: every frame's lateness was observed.
    frames = value(after, "voice_output_frame_lateness_seconds_count") \
        - value(before, "voice_output_frame_lateness_seconds_count")
    assert frames >= report.agent_audio_s / 0.02 * 0.5, (frames, report.agent_audio_s)
    assert value(after, "voice_event_loop_lag_seconds_count") > value(before, "voice_event_loop_lag_seconds_count")
    gc_passes = "voice_gc_pause_seconds_count"
    assert value(after, gc_passes, generation="0") > value(before, gc_passes, generation="0")
