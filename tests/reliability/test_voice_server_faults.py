"""The voice server going away: a graceful drain (SIGTERM / POST /internal/v1/drain) and a crash (SIGKILL).

Real processes throughout: the backend (with its dialer) and the voice servers are subprocesses on the session's
FerretDB + MinIO; only the carrier's REST API is the fake carrier (a test double that follows the protocol reference).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from campaign_testkit import contact_number, create_campaign, human, provision_org
from pymongo import AsyncMongoClient
from reliability_helpers import (
    Figures,
    QuietStack,
    kill,
    service_headers,
    silent_voice_env,
    start_voice,
    unique_id,
    until,
    voice_status,
)
from stack_helpers import run_backend

from backend.campaigns.collections import SLOTS
from backend.db.collections import CALLS
from core.call_events import CallEventBatch, CallStarted
from voice_server.testing.provision import SimLine, provision_line, register
from voice_server.testing.simulator import CallScript, SimulatedCall

pytestmark = pytest.mark.timeout(300)

# The agent never gives up on a silent caller within a test (no speech servers: it cannot talk anyway).
PATIENT_AGENT: dict[str, Any] = {"silence": {"reminder_after_s": 120, "max_reminders": 0}}


def inbound(line: SimLine, voice_url: str, http: httpx.AsyncClient) -> SimulatedCall:
    return SimulatedCall(carrier="twilio", answer_url=f"{voice_url}/twilio/voice", account=line.account,
                         from_number="+14155550100", to_number=line.number, http=http,
                         script=CallScript(turns=[], hangup_after_s=None, max_duration_s=120))


async def call_of(http: httpx.AsyncClient, line: SimLine, sim: SimulatedCall) -> dict[str, Any] | None:
    from voice_server.answering import inbound_call_id

    return await line.call_detail(http, inbound_call_id("twilio", sim.report.carrier_call_id))


async def test_drain_refuses_new_calls_finishes_live_ones_then_exits(quiet_stack: QuietStack, speech_env: dict[str, str],
                                                                     http: httpx.AsyncClient) -> None:
    s = quiet_stack
    figures = Figures("drain")
    voice, voice_url = start_voice(s.run_dir, silent_voice_env(s.backend_url, s.run_dir / unique_id("spool"),
                                                               unique_id("voice-drain"), **speech_env),
                                 unique_id("voice-drain"))
    try:
        line = await provision_line(http, s.backend_url, carrier="twilio", fake_carrier=s.carrier,
                                    agent_config=PATIENT_AGENT)
        assert (await http.get(f"{voice_url}/ready")).status_code == 200
        live = inbound(line, voice_url, http)
        live_task = asyncio.create_task(live.run())
        await until(lambda: voice_status(http, voice_url), 30, "voice server reachable")
        await until(lambda: _live_calls(http, voice_url, 1), 30, "the first call is live")

        # The drain endpoint wants a service token; it does not exit here (exit=false), SIGTERM below does.
        assert (await http.post(f"{voice_url}/internal/v1/drain")).status_code == 401
        resp = await http.post(f"{voice_url}/internal/v1/drain", params={"exit": "false"}, headers=service_headers())
        assert resp.status_code == 202 and resp.json()["draining"] is True
        ready = await http.get(f"{voice_url}/ready")
        assert ready.status_code == 503 and ready.json()["live_calls"] == 1
        assert (await http.get(f"{voice_url}/health")).status_code == 200  # alive: not restarted by the liveness probe

        # A new call is turned away politely: a spoken apology and a hang-up, no media stream.
        refused = await inbound(line, voice_url, http).run()
        assert refused.http_status == 200 and refused.socket_opened is None
        assert "<Say>" in refused.answer_xml and "<Hangup" in refused.answer_xml

        # SIGTERM (what Kubernetes sends): the live call is not cut; the process waits for it.
        assert voice.proc is not None
        os.killpg(voice.proc.pid, signal.SIGTERM)
        await asyncio.sleep(2.0)
        assert voice.proc.poll() is None, "exited with a call still live"
        assert not live_task.done(), "the live call was cut by the drain"
        hung_up = time.monotonic()
        await live.caller_hangup()
        await asyncio.wait_for(live_task, 20)
        await until(lambda: voice.proc is not None and voice.proc.poll() is not None, 30, "the drained server exits")
        figures["exit_after_last_call_s"] = round(time.monotonic() - hung_up, 2)
        # Nothing lost: the live call's end reached the backend before the process went (its outbox was flushed).
        call = await until(lambda: _ended(http, line, live), 30, "the live call's end in the backend")
        assert call["end_reason"] == "caller_hangup", call
        figures["live_call_end_reason"] = call["end_reason"]
        figures.show()
    finally:
        voice.stop()


async def _live_calls(http: httpx.AsyncClient, voice_url: str, n: int) -> bool:
    return len((await voice_status(http, voice_url))["live_calls"]) == n


async def _ended(http: httpx.AsyncClient, line: SimLine, sim: SimulatedCall) -> dict[str, Any] | None:
    call = await call_of(http, line, sim)
    return call if call and call.get("end_reason") else None


async def test_killed_voice_server_ends_its_call_and_frees_the_campaign_slot(quiet_stack: QuietStack,
                                                                           speech_env: dict[str, str],
                                                                           http: httpx.AsyncClient) -> None:
    s = quiet_stack
    figures = Figures("voice server SIGKILL")
    server_id = unique_id("voice-kill")
    voice, voice_url = start_voice(s.run_dir, silent_voice_env(s.backend_url, s.run_dir / unique_id("spool"),
                                                               server_id, **speech_env), server_id, port=s.voice_port)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"], tz_aware=True)
    db = client[s.db_name]
    try:
        org = await provision_org(http, s.backend_url, s.carrier, carriers=("twilio",),
                                  agent_config={**PATIENT_AGENT, "max_duration_s": 300})
        number = contact_number("US")
        s.carrier.callees[number] = human(talk_s=120)  # would talk for two minutes
        cid = await create_campaign(http, org, [number], max_concurrent_calls=1, max_call_duration_s=300)
        call = await until(lambda: db[CALLS].find_one({"campaign_id": cid, "status": "in_progress",
                                                       "voice_server_id": server_id}), 90, "the campaign call is live")
        assert await db[SLOTS].count_documents({"campaign_id": cid}) >= 1

        kill(voice)
        killed = time.monotonic()
        ended = await until(lambda: _call_ended(db, call["_id"]), 60, "the lost call is ended")
        figures["detected_after_s"] = round(time.monotonic() - killed, 2)
        assert ended["end_reason"] == "voice_server_lost", ended
        assert server_id in ended.get("end_detail", "")
        await until(lambda: _no_slots(db, cid), 30, "the campaign slot is released")
        figures["slot_free_after_s"] = round(time.monotonic() - killed, 2)
        progress = (await http.get(f"{s.backend_url}/api/v1/campaigns/{cid}/progress", headers=org.headers)).json()
        assert progress["live_calls"] == 0 and progress["done"] == 1, progress
        figures["campaign_status"] = progress["status"]
        figures.show()
    finally:
        voice.stop()
        await client.close()


async def _call_ended(db: Any, call_id: str) -> dict[str, Any] | None:
    doc = await db[CALLS].find_one({"_id": call_id})
    if doc is None:  # archived once ended
        from backend.db.collections import CALLS_ARCHIVE

        doc = await db[CALLS_ARCHIVE].find_one({"_id": call_id})
    return doc if doc and doc.get("ended_at") else None


async def _no_slots(db: Any, campaign_id: str) -> bool:
    return await db[SLOTS].count_documents({"campaign_id": campaign_id}) == 0


async def test_restarted_voice_server_ends_the_old_instance_calls_but_never_a_live_twins(
        quiet_stack: QuietStack, http: httpx.AsyncClient) -> None:
    """Same VOICE_SERVER_ID, two processes: the old one stopped beating (a crash and a quick restart), the new one
    beats. The old instance's call ends when its lease runs out; the live instance's calls are never touched. Driven
    through the internal API with real events."""
    s = quiet_stack
    token, org_id = await register(http, s.backend_url, "restart")
    server_id = unique_id("voice-restart")
    old_call, new_call = uuid.uuid4().hex, uuid.uuid4().hex
    events = [CallStarted(event_id=f"{c}-started", call_id=c, org_id=org_id, direction="inbound", carrier="twilio",
                          from_number="+14155550100", to_number="+14155550101", voice_server_id=server_id)
              for c in (old_call, new_call)]
    resp = await http.post(f"{s.backend_url}/internal/v1/calls/events", headers=service_headers(),
                           json=CallEventBatch(events=events).model_dump(mode="json"))
    assert resp.status_code == 200, resp.text
    beat = f"{s.backend_url}/internal/v1/voice-servers/{server_id}/heartbeat"
    old = {"voice_server_id": server_id, "instance_id": "old", "calls": [old_call], "lease_s": 2}
    assert (await http.post(beat, json=old)).status_code == 401  # service token required
    mismatch = await http.post(beat, headers=service_headers(), json={**old, "voice_server_id": "other"})
    assert mismatch.status_code == 422
    assert (await http.post(beat, headers=service_headers(), json=old)).status_code == 200
    line = SimLine(backend_url=s.backend_url, carrier="twilio", number="", org_id=org_id, agent_id="",
                   account=None, access_token=token)  # type: ignore[arg-type]
    await until(lambda: line.call_detail(http, old_call), 30, "the calls are applied")
    await until(lambda: line.call_detail(http, new_call), 30, "the calls are applied")
    new = {**old, "instance_id": "new", "calls": [new_call], "lease_s": 600}
    lost_at = time.monotonic()
    for _ in range(12):  # the new process keeps beating; the old one never beats again
        assert (await http.post(beat, headers=service_headers(), json=new)).status_code == 200
        await asyncio.sleep(0.5)
    call = await until(lambda: _ended_detail(http, line, old_call), 30, "the old instance's call is ended")
    assert call["end_reason"] == "voice_server_lost"
    assert time.monotonic() - lost_at >= 2.0  # not before the old lease ran out
    assert not (await line.call_detail(http, new_call) or {}).get("end_reason"), "a live instance's call was ended"


async def _ended_detail(http: httpx.AsyncClient, line: SimLine, call_id: str) -> dict[str, Any] | None:
    call = await line.call_detail(http, call_id)
    return call if call and call.get("end_reason") else None


async def test_a_call_no_voice_server_carries_is_ended_but_a_carried_one_is_not(
        data_services: dict[str, str], state_dir: Path, http: httpx.AsyncClient) -> None:
    """Answered, but the carrier never opened the media stream and sent no status callback: once older than
    CALL_ORPHAN_AFTER_S and listed by no beating voice server, the call is ended as an error (it left the live view
    and its slot); a call the same server does list is left alone."""
    env = {**data_services, "MONGODB_DB": f"orphans_{uuid.uuid4().hex[:8]}", "CALL_ORPHAN_AFTER_S": "2",
           "CALL_LEASE_CHECK_INTERVAL_S": "0.5"}
    with contextlib.contextmanager(run_backend)(state_dir, "orphan-backend", env) as backend_url:
        token, org_id = await register(http, backend_url, "orphans")
        server_id = unique_id("voice-orphans")
        orphan, carried = uuid.uuid4().hex, uuid.uuid4().hex
        events = [CallStarted(event_id=f"{c}-started", call_id=c, org_id=org_id, direction="inbound",
                              carrier="twilio", from_number="+14155550100", to_number="+14155550101",
                              voice_server_id=server_id) for c in (orphan, carried)]
        resp = await http.post(f"{backend_url}/internal/v1/calls/events", headers=service_headers(),
                               json=CallEventBatch(events=events).model_dump(mode="json"))
        assert resp.status_code == 200, resp.text
        line = SimLine(backend_url=backend_url, carrier="twilio", number="", org_id=org_id, agent_id="",
                       account=None, access_token=token)  # type: ignore[arg-type]
        beat = f"{backend_url}/internal/v1/voice-servers/{server_id}/heartbeat"
        alive = {"voice_server_id": server_id, "instance_id": "one", "calls": [carried], "lease_s": 600}

        async def beating_until_the_orphan_ends() -> dict[str, Any] | None:
            assert (await http.post(beat, headers=service_headers(), json=alive)).status_code == 200
            return await _ended_detail(http, line, orphan)

        call = await until(beating_until_the_orphan_ends, 60, "the orphaned call is ended", every_s=0.5)
        assert call["end_reason"] == "error" and "never connected" in call["end_detail"], call
        live = (await http.get(f"{backend_url}/api/v1/live/calls", headers=line.headers)).json()
        assert [c["id"] for c in live] == [carried]
        assert not (await line.call_detail(http, carried) or {}).get("end_reason"), "a carried call was ended"
