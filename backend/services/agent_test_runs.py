"""Agent test runs started from the editor ("Run tests"): queued, then run by a leader-only background loop.

A run is placed calls and minutes long, so it never runs on the request: the route stores it queued (with the
scenarios and the agent version it tests) and the `agent-tests` loop claims one at a time, places each scenario
as a simulated call (simulated_caller.py) and stores each result as it comes, so the editor shows progress. A run
whose backend stopped mid-way is marked failed ("interrupted"), never re-run: its calls were already placed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument

from backend.db.collections import AGENT_TEST_RUNS, Db
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, not_found
from backend.models.agents import AgentTestRunOut, AgentTestRunStart, AgentUpdate, ScenarioResultIn
from backend.security.permissions import Principal, Role
from backend.services.agents import AgentService, result_counts, test_run_out
from backend.services.simulated_caller import SimulatedCaller
from core.agent_tests import Scenario, load_suite

log = logging.getLogger(__name__)

LEASE_S = 15 * 60  # renewed after each scenario; one scenario is a call of a few minutes at most


class AgentTestRunService:
    def __init__(self, db: Db, agents: AgentService, caller: SimulatedCaller) -> None:
        self._db = db
        self._agents = agents
        self._caller = caller
        self.on_queued: Callable[[], None] | None = None

    async def start(self, principal: Principal, agent_id: str, body: AgentTestRunStart) -> AgentTestRunOut:
        agent = await self._agents.get(principal, agent_id)
        if body.suite_yaml:
            try:
                scenarios = load_suite(body.suite_yaml).scenarios
            except ValueError as exc:
                raise ApiError(422, "validation_error", f"body.suite_yaml: {exc}",
                               [ErrorDetail(path="body.suite_yaml", message=str(exc))]) from None
            label = "scenarios from the editor"
            if body.save_with_agent:
                config = agent.config.model_copy(update={"test_scenarios": scenarios})
                agent = await self._agents.update(principal, agent_id, AgentUpdate(
                    config=config, note="test scenarios saved from Run tests", base_version=agent.version))
                label = f"saved with version {agent.version}"
        elif body.save_with_agent:
            message = "nothing to save: paste the scenarios to save with the agent"
            raise ApiError(422, "validation_error", f"body.save_with_agent: {message}",
                           [ErrorDetail(path="body.save_with_agent", message=message)])
        else:
            scenarios = agent.config.test_scenarios
            label = f"saved with version {agent.version}"
        if not scenarios:
            message = "no scenarios: paste some, or save test_scenarios with the agent"
            raise ApiError(422, "validation_error", f"body.suite_yaml: {message}",
                           [ErrorDetail(path="body.suite_yaml", message=message)])
        doc = {
            "_id": new_id(), "org_id": principal.org_id, "agent_id": agent_id, "version": agent.version,
            "suite": label, "status": "queued", "error": None, "created_at": utcnow(), "started_at": None,
            "finished_at": None, "scenario_list": [s.model_dump(mode="json") for s in scenarios],
            "scenarios": len(scenarios), "results": [], "passed": 0, "failed": 0, "skipped": 0,
            "user_id": principal.user_id, "api_key_id": principal.api_key_id,
        }
        await self._db[AGENT_TEST_RUNS].insert_one(doc)
        if self.on_queued is not None:
            self.on_queued()
        return test_run_out(doc)

    async def get(self, principal: Principal, agent_id: str, run_id: str) -> AgentTestRunOut:
        doc = await self._db[AGENT_TEST_RUNS].find_one({"_id": run_id})
        if doc is None or doc["org_id"] != principal.org_id or doc["agent_id"] != agent_id:
            raise not_found("Test run")
        return test_run_out(doc)

    async def run_once(self) -> int:
        """Runs the oldest queued run to the end; 0 when none was waiting."""
        now = utcnow()
        await self._db[AGENT_TEST_RUNS].update_many(
            {"status": "running", "lease_until": {"$lt": now}},
            {"$set": {"status": "failed", "finished_at": now,
                      "error": "interrupted: the backend stopped during the run; start it again"}})
        doc = await self._db[AGENT_TEST_RUNS].find_one_and_update(
            {"status": "queued"}, {"$set": {"status": "running", "started_at": now,
                                            "lease_until": now + timedelta(seconds=LEASE_S)}},
            sort=[("created_at", 1)], return_document=ReturnDocument.AFTER)
        if doc is None:
            return 0
        await self._run(doc)
        return 1

    async def _run(self, doc: dict[str, Any]) -> None:
        # The run acts as whoever started it, in that organisation: its calls are theirs in the call log.
        principal = Principal(org_id=doc["org_id"], role=Role.member, user_id=doc.get("user_id"),
                              api_key_id=doc.get("api_key_id"))
        results: list[ScenarioResultIn] = []
        error = None
        try:
            config = await self._agents.load_version_config(doc["agent_id"], doc["version"])
            if config is None:
                raise ApiError(404, "not_found", f"agent version {doc['version']} is gone")
            for raw in doc["scenario_list"]:
                scenario = Scenario.model_validate(raw)
                results.append(await self._caller.run(principal, doc["agent_id"], config, scenario))
                await self._db[AGENT_TEST_RUNS].update_one({"_id": doc["_id"]}, {"$set": {
                    "results": [r.model_dump() for r in results], **result_counts(results),
                    "lease_until": utcnow() + timedelta(seconds=LEASE_S)}})
        except Exception as exc:  # the run is over either way; say why in it
            log.exception("agent test run %s failed", doc["_id"])
            error = (exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}")[:500]
        failed = error is not None or any(r.status == "failed" for r in results)
        await self._db[AGENT_TEST_RUNS].update_one({"_id": doc["_id"]}, {"$set": {
            "status": "failed" if failed else "passed", "error": error, "finished_at": utcnow()}})
