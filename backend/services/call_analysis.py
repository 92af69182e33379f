"""Post-call analysis: after a call ends, the LLM reads its transcript and returns a summary, the agent's extraction
fields and a success verdict, as one JSON object constrained to the agent's schema (JSON mode), so a small model
returns valid JSON too.

Off the call's critical path: the call's end only queues the call (one small document); a leader-only loop runs the
analyses with retries and backoff, stores each in its own document (the archived call is never rewritten), and
sends the `call.analyzed` webhook."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
import jsonschema

from backend.config import BackendSettings
from backend.db.collections import AGENT_VERSIONS, CALL_ANALYSES, Db
from backend.db.ids import utcnow
from backend.models.calls import CallAnalysisOut
from backend.services.transcripts import load_transcript
from core.agent_config import AgentConfig, AnalysisConfig
from core.service_auth import ServiceTokenSource

log = logging.getLogger(__name__)
MAX_TRANSCRIPT_CHARS = 6000  # the tail of a long call: what fits a small model's context with the answer


def analysis_messages(config: AnalysisConfig, turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    lines = "\n".join(f"{t['speaker']}: {t['text']}" for t in turns if t.get("speaker") in ("agent", "caller"))
    task = [f"summary: {config.summary_prompt}"]
    if config.success_rubric:
        task.append(f"success: true if {config.success_rubric}, else false")
    if config.extraction_schema is not None:
        task.append("data: " + ", ".join(f"{k} ({v.get('type')}{': ' + v['description'] if 'description' in v else ''})"
                                         for k, v in config.extraction_schema.properties.items()))
    return [{"role": "system", "content": "You analyse phone call transcripts. Answer with one JSON object.\n"
                                          + "\n".join(task)},
            {"role": "user", "content": "Transcript:\n" + lines[-MAX_TRANSCRIPT_CHARS:]}]


class CallAnalyzer:
    def __init__(self, db: Db, settings: BackendSettings, http: httpx.AsyncClient,
                 tokens: ServiceTokenSource) -> None:
        """`tokens`: the embedded LLM server's credential when ANALYSIS_LLM_API_KEY is unset."""
        self._db = db
        self._settings = settings
        self._http = http
        self._tokens = tokens
        self.on_analyzed: Any = None  # async (org_id, event_type, event_id, data, at): the webhook fan-out

    @property
    def enabled(self) -> bool:
        return bool(self._settings.analysis_llm_base_url)

    async def after_event(self, org_id: str, event_type: str, event_id: str, data: dict[str, Any], at: Any) -> None:
        """A listener next to the webhooks' fan-out: a `call.ended` queues the call's analysis."""
        if event_type == "call.ended":
            await self.enqueue(org_id, data)

    async def enqueue(self, org_id: str, call: dict[str, Any]) -> None:
        """Queues the ended call (its public summary) if its agent version has an analysis configured."""
        if not self.enabled or not call.get("agent_id") or not call.get("agent_version"):
            return
        version = await self._db[AGENT_VERSIONS].find_one({"_id": f"{call['agent_id']}:v{call['agent_version']}"})
        if version is None or not (version.get("config") or {}).get("analysis"):
            return
        await self._db[CALL_ANALYSES].update_one({"_id": call["id"]}, {"$setOnInsert": {
            "org_id": org_id, "agent_id": call["agent_id"], "agent_version": call["agent_version"],
            "campaign_id": call.get("campaign_id"), "contact_id": call.get("contact_id"),
            "status": "pending", "attempts": 0, "next_at": utcnow(), "queued_at": utcnow()}}, upsert=True)

    async def run_once(self) -> int:
        now = utcnow()
        due = [d async for d in self._db[CALL_ANALYSES].find({"status": "pending", "next_at": {"$lte": now}}).limit(4)]
        for doc in due:
            await self._analyze(doc)
        return len(due)

    async def _analyze(self, doc: dict[str, Any]) -> None:
        version = await self._db[AGENT_VERSIONS].find_one({"_id": f"{doc['agent_id']}:v{doc['agent_version']}"})
        config = AgentConfig.model_validate(version["config"]).analysis if version else None
        if config is None:
            await self._db[CALL_ANALYSES].delete_one({"_id": doc["_id"]})
            return
        transcript = await load_transcript(self._db, doc["_id"], doc["org_id"])
        started = time.perf_counter()
        attempts = int(doc.get("attempts", 0)) + 1
        try:
            answer = await self._ask(config, transcript["turns"])
        except Exception as exc:  # any failure is retried, then recorded; never raised into the loop
            reason = f"{type(exc).__name__}: {exc}"[:500]
            final = attempts >= self._settings.analysis_max_attempts
            await self._db[CALL_ANALYSES].update_one({"_id": doc["_id"]}, {"$set": {
                "attempts": attempts, "error": reason, "status": "failed" if final else "pending",
                "next_at": utcnow() + timedelta(seconds=2 ** attempts)}})
            log.warning("analysis of call %s failed (attempt %d): %s", doc["_id"], attempts, reason)
            return
        result = {"status": "done", "attempts": attempts, "error": None, "summary": str(answer.get("summary", "")),
                  "success": answer.get("success"), "data": answer.get("data") or {},
                  "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                  "model": self._settings.analysis_llm_model, "analyzed_at": utcnow()}
        await self._db[CALL_ANALYSES].update_one({"_id": doc["_id"]}, {"$set": result})
        if self.on_analyzed is not None:
            out = CallAnalysisOut.model_validate({**doc, **result})
            await self.on_analyzed(doc["org_id"], "call.analyzed", f"{doc['_id']}:analyzed",
                                   {"call_id": doc["_id"], "analysis": out.model_dump(mode="json")},
                                   result["analyzed_at"])

    async def _ask(self, config: AnalysisConfig, turns: list[dict[str, Any]]) -> dict[str, Any]:
        schema = config.answer_schema()
        s = self._settings
        response_format: dict[str, Any] = (
            {"type": "json_object", "schema": schema} if s.analysis_json_mode == "json_object"
            else {"type": "json_schema", "json_schema": {"name": "call_analysis", "schema": schema, "strict": True}})
        resp = await self._http.post(
            f"{s.analysis_llm_base_url.rstrip('/')}/chat/completions", timeout=s.analysis_timeout_s,
            headers={"Authorization": f"Bearer {self._tokens.platform_key(s.analysis_llm_api_key.get_secret_value())}"},
            json={"model": s.analysis_llm_model, "messages": analysis_messages(config, turns), "temperature": 0,
                  "max_tokens": 400, "response_format": response_format})
        resp.raise_for_status()
        content = resp.json()["choices"][0]["message"]["content"]
        answer = json.loads(content, strict=False)  # small models put raw newlines inside strings
        jsonschema.validate(answer, schema)  # a server without JSON mode: an invalid answer is a failed attempt
        return dict(answer)

    async def for_call(self, call_id: str, org_id: str) -> CallAnalysisOut | None:
        doc = await self._db[CALL_ANALYSES].find_one({"_id": call_id})
        if doc is None or doc.get("org_id") != org_id:
            return None
        return CallAnalysisOut.model_validate(doc)
