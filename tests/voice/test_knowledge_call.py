"""A call answered from a knowledge base: the clinic's policy document (tests/knowledge_data) is uploaded and
indexed through the backend, attached to an agent, and a simulated caller asks something only that document
answers. The agent's spoken answer, transcribed by the real ASR server, carries the fact; the call detail shows
which chunk it was answered from.

Retrieval-first: the chunks are injected before the LLM runs (knowledge.mode = inject) and the agent has no tools
(tool_choice none), which is what makes the embedded SmolLM2-135M repeat the fact reliably.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_helpers import AsrServer, synthesize
from voicetest_helpers import Simulate, heard_text, wait_for_call, words_heard

from voice_server.answering import inbound_call_id
from voice_server.testing.provision import SimLine
from voice_server.testing.simulator import CallerTurn, CallScript

pytestmark = pytest.mark.timeout(300)
DOCS = Path(__file__).resolve().parents[1] / "knowledge_data"
QUESTION = "Who is the dentist on call for weekend emergencies?"


async def _indexed_kb(http: httpx.AsyncClient, backend_url: str, headers: dict[str, str]) -> tuple[str, str]:
    kb = (await http.post(f"{backend_url}/api/v1/knowledge-bases", headers=headers,
                          json={"name": "Clinic policies"})).json()["id"]
    source = await http.post(f"{backend_url}/api/v1/knowledge-bases/{kb}/sources", headers=headers,
                             files={"file": ("clinic_policies.txt", (DOCS / "clinic_policies.txt").read_bytes())})
    assert source.status_code == 202, source.text
    for _ in range(240):
        sources = (await http.get(f"{backend_url}/api/v1/knowledge-bases/{kb}/sources", headers=headers)).json()
        if sources[0]["status"] == "ready":
            return kb, source.json()["id"]
        assert sources[0]["status"] != "failed", sources[0]
        await asyncio.sleep(0.5)
    raise AssertionError("the document was not indexed")


async def test_the_agent_answers_from_the_knowledge_base(
        simulate: Simulate, twilio_line_with: Any, http: httpx.AsyncClient, backend_url: str,
        owner: tuple[str, str], tts_url: str, asr_server: AsrServer) -> None:
    headers = {"Authorization": f"Bearer {owner[0]}"}
    kb, source_id = await _indexed_kb(http, backend_url, headers)
    line: SimLine = await twilio_line_with(
        system_prompt="You are the receptionist of Brightsmile Dental Clinic. Answer the caller's question in one "
                      "short sentence, using the facts you are given.",
        greeting="Brightsmile Dental, how can I help?",
        enable_end_call=False,
        llm={"max_tokens": 40, "temperature": 0.0, "tool_choice": "none"},
        knowledge={"knowledge_base_ids": [kb], "top_k": 1, "score_threshold": 0.3},
        silence={"reminder_after_s": 30.0, "max_reminders": 0},  # the caller hangs up, not the agent
    )
    script = CallScript(turns=[CallerTurn(audio=synthesize(tts_url, QUESTION), label="question")],
                        # the answer may pause between its first words and the rest on a busy machine
                        hangup_after_s=3.0, agent_silence_s=1.5, max_duration_s=60)
    report = await simulate(line, script)
    assert report.answers and report.answers[0].first_audio is not None, "the question got no spoken answer"

    heard = await heard_text(asr_server, report)  # the agent's audio, through the ASR server
    assert "brown" in heard.lower(), heard

    call = await wait_for_call(http, line, inbound_call_id("twilio", report.carrier_call_id),
                               lambda c: any(t.get("knowledge") for t in c.get("turns", [])))
    answer = next(t for t in call["turns"] if t["speaker"] == "agent" and t.get("knowledge"))
    assert "brown" in answer["text"].lower(), answer
    knowledge = answer["knowledge"]
    assert knowledge["error"] is None and knowledge["chunk_ids"][0].startswith(source_id), knowledge
    assert knowledge["sources"] == ["clinic_policies.txt"]
    caller = " ".join(t["text"] for t in call["turns"] if t["speaker"] == "caller")
    assert words_heard(caller, QUESTION) >= 4, caller
