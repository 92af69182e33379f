"""Saving an agent with PII redaction: a pattern that needs backtracking is refused with a 422 naming the field, a
good configuration round-trips."""

from __future__ import annotations

import httpx
from backend_testkit import AGENT_CONFIG, register


async def test_agent_redaction_patterns_are_checked_when_saved(client: httpx.AsyncClient) -> None:
    owner = await register(client, "redact")
    bad = {**AGENT_CONFIG, "redaction": {"enabled": True, "patterns": [{"label": "pin", "pattern": r"(\d+)\1"}]}}
    resp = await client.post("/api/v1/agents", json={"name": "Bad", "config": bad}, headers=owner.headers)
    assert resp.status_code == 422
    assert any("redaction.patterns" in d["path"] for d in resp.json()["error"]["details"])
    good = {**AGENT_CONFIG, "redaction": {"enabled": True, "sensitive_digit_lengths": [4], "beep_recording": True,
                                          "patterns": [{"label": "policy", "pattern": r"POL-\d{6}"}]}}
    resp = await client.post("/api/v1/agents", json={"name": "Good", "config": good}, headers=owner.headers)
    assert resp.status_code == 201, resp.text
    saved = resp.json()["config"]["redaction"]
    assert saved["patterns"] == [{"label": "policy", "pattern": r"POL-\d{6}"}] and saved["beep_recording"]
