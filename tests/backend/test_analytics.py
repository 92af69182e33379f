"""Analytics computed by aggregation in FerretDB: calls per day, answer rate, average duration, voice-to-voice
percentiles (nearest rank) and usage units, on a known data set."""

from __future__ import annotations

import httpx
from backend_testkit import call_events, create_agent, post_events, register


async def test_summary_matches_the_data(client: httpx.AsyncClient) -> None:
    owner = await register(client, "stats")
    agent = await create_agent(client, owner)
    other_agent = await create_agent(client, owner, "Other")
    # Day 1: two answered inbound calls (30 s, 50 s); one outbound no-answer.
    # Day 3: one answered outbound call (100 s) on the other agent.
    latencies = [[400.0, 900.0], [500.0, 700.0, 800.0], [], [300.0, 1000.0, 600.0, 650.0, 2000.0]]
    specs = [
        ("2030-03-01T09:00:00+00:00", "inbound", "caller_hangup", 30.0, agent["id"], latencies[0]),
        ("2030-03-01T10:00:00+00:00", "inbound", "agent_hangup", 50.0, agent["id"], latencies[1]),
        ("2030-03-01T11:00:00+00:00", "outbound", "no_answer", 0.0, agent["id"], latencies[2]),
        ("2030-03-03T12:00:00+00:00", "outbound", "transferred", 100.0, other_agent["id"], latencies[3]),
    ]
    for at, direction, reason, duration, agent_id, v2v in specs:
        _, events = call_events(owner.org_id, agent_id=agent_id, direction=direction, end_reason=reason,
                                duration_s=duration, at=at, v2v_ms=v2v)
        if reason == "no_answer":
            events = [events[0], events[-1]]
        await post_events(client, events)
    resp = await client.get("/api/v1/analytics/summary", params={"since": "2030-03-01", "until": "2030-03-04"},
                            headers=owner.headers)
    assert resp.status_code == 200, resp.text
    s = resp.json()
    assert s["total_calls"] == 4 and s["ended_calls"] == 4 and s["answered_calls"] == 3
    assert s["inbound_calls"] == 2 and s["outbound_calls"] == 2
    assert s["answer_rate"] == 0.75
    assert s["avg_duration_s"] == 45.0  # (30 + 50 + 0 + 100) / 4
    assert [(d["date"], d["calls"], d["answered"]) for d in s["per_day"]] == [
        ("2030-03-01", 3, 2), ("2030-03-02", 0, 0), ("2030-03-03", 1, 1), ("2030-03-04", 0, 0)]
    # Per-day voice-to-voice percentiles (nearest rank within each day): day 1 has 400..900, day 3 300..2000.
    assert [(d["p50_ms"], d["p95_ms"]) for d in s["per_day"]] == [
        (700.0, 900.0), (None, None), (650.0, 2000.0), (None, None)]
    all_v2v = sorted(v for group in latencies for v in group)  # 10 samples
    assert s["latency_samples"] == len(all_v2v) == 10
    assert s["voice_to_voice_p50_ms"] == all_v2v[4]  # nearest rank: ceil(0.5 * 10) = 5th
    assert s["voice_to_voice_p95_ms"] == all_v2v[9]  # ceil(0.95 * 10) = 10th
    usage = s["usage"]
    assert usage["llm_prompt_tokens"] == 400 and usage["tts_characters"] == 600 and usage["caller_audio_s"] == 40.0

    one_agent = (await client.get("/api/v1/analytics/summary", params={
        "since": "2030-03-01", "until": "2030-03-04", "agent_id": other_agent["id"]}, headers=owner.headers)).json()
    assert one_agent["total_calls"] == 1 and one_agent["latency_samples"] == 5
    assert one_agent["voice_to_voice_p50_ms"] == 650.0 and one_agent["voice_to_voice_p95_ms"] == 2000.0

    empty = (await client.get("/api/v1/analytics/summary", params={"since": "2031-01-01", "until": "2031-01-02"},
                              headers=owner.headers)).json()
    assert empty["total_calls"] == 0 and empty["voice_to_voice_p50_ms"] is None and empty["answer_rate"] == 0.0
    backwards = await client.get("/api/v1/analytics/summary", params={"since": "2030-03-04", "until": "2030-03-01"},
                                 headers=owner.headers)
    assert backwards.status_code == 400 and backwards.json()["error"]["details"][0]["path"] == "query.since"
    too_long = await client.get("/api/v1/analytics/summary", params={"since": "2028-01-01", "until": "2030-03-01"},
                                headers=owner.headers)
    assert too_long.status_code == 400
