"""A campaign whose agent detects voicemail in the call: the carrier's AMD verdict (at the backend's campaign
callback) is relayed to the call's voice server, so the agent leaves the campaign's message itself (in its own
voice) and the carrier is not asked to say it. With an agent that does not detect in the call the carrier's TTS
says it, as before (tests/campaigns/test_campaign_dialing.py). The agent speaking is covered with real speech
servers by tests/voice/test_voicemail_relay.py; this stack's voice server has none."""

from __future__ import annotations

import os
from typing import Any

import pytest
from campaign_testkit import (
    all_contacts,
    calls_to,
    contact_number,
    create_campaign,
    dialers,
    ok,
    provision_org,
    wait_campaign,
)
from pymongo import AsyncMongoClient

from backend.campaigns.collections import MARKS
from voice_server.testing.fake_carrier import ScriptedCallee
from voice_server.testing.simulator import CallScript

pytestmark = pytest.mark.timeout(180)


async def test_the_amd_verdict_goes_to_the_agent_not_the_carriers_tts(campaign_stack: Any) -> None:
    s = campaign_stack
    org = await provision_org(s.http, s.backend_url, s.carrier, carriers=("twilio",), agent_config={
        "greeting": "Hi {{first_name}}, this is Acme.", "max_duration_s": 60,
        "voicemail": {"detect_in_call": True}})
    number = contact_number("US")
    # The verdict comes 3 s after the answer: the call is live on the voice server by then.
    s.carrier.callees[number] = ScriptedCallee(outcome="voicemail", ring_s=0.05, amd_delay_s=3.0,
                                               hangup_after_answer_s=6.0,
                                               script=CallScript(turns=[], hangup_after_s=None, max_duration_s=20))
    message = "Hi, this is Acme about your renewal. Please call us back."
    cid = await create_campaign(s.http, org, [number], voicemail={"detect": True, "action": "leave_message",
                                                                 "message": message})
    async with dialers(1, s.db_name, s.backend_url, s.voice_url, s.log_dir):
        progress = await wait_campaign(s.http, org, cid, limit_s=90)
    assert progress["by_status"] == {"voicemail": 1}, progress
    [call] = calls_to(s.carrier, {number})
    assert call.answered_by == "machine_end_beep"
    assert call.spoken_message is None  # the carrier was not told to say the message
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URI"], tz_aware=True)
    try:
        marks = {m["kind"]: m async for m in client[s.db_name][MARKS].find({"campaign_id": cid})}
    finally:
        await client.close()
    assert marks["voicemail"]["action"] == "in_call", marks
    assert marks["final"]["detail"] == "voicemail: message left by the agent", marks["final"]
    contact = (await all_contacts(s.http, org, cid))[number]
    assert contact["status"] == "voicemail"
    await ok(await s.http.get(f"{s.backend_url}/api/v1/campaigns/{cid}", headers=org.headers))
