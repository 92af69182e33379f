"""Agents and their immutable, numbered versions.

A version document's `_id` is "{agent_id}:v{n}", so two concurrent edits cannot both create version n: the second
insert fails and that edit gets 409 instead of silently overwriting the first.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from backend.db.collections import AGENT_TEST_RUNS, AGENT_VERSIONS, AGENTS, ORGANIZATIONS, PHONE_NUMBERS, Db
from backend.db.ids import new_id, utcnow
from backend.errors import ApiError, ErrorDetail, conflict, not_found
from backend.models.agents import (
    AgentCreate,
    AgentOut,
    AgentSummary,
    AgentTestRunIn,
    AgentTestRunOut,
    AgentUpdate,
    AgentVersionOut,
    ScenarioResultIn,
)
from backend.security.permissions import Principal
from backend.services.agent_targets import platform_endpoints_only, target_problems
from backend.services.audit import AuditLog
from backend.services.secrets import SecretService
from core.agent_config import AgentConfig
from core.egress import EgressPolicy


def version_id(agent_id: str, version: int) -> str:
    return f"{agent_id}:v{version}"


class AgentService:
    def __init__(self, db: Db, audit: AuditLog, egress: EgressPolicy, secrets: SecretService) -> None:
        self._db = db
        self._audit = audit
        self._egress = egress
        self._secrets = secrets

    async def _custom_endpoints_allowed(self, org_id: str) -> bool:
        org = await self._db[ORGANIZATIONS].find_one({"_id": org_id}, {"allow_custom_endpoints": 1}) or {}
        return bool(org.get("allow_custom_endpoints"))

    async def _check_targets(self, org_id: str, config: AgentConfig) -> None:
        problems = target_problems(config, self._egress, await self._custom_endpoints_allowed(org_id))
        if problems:
            raise ApiError(422, "validation_error", f"{problems[0].path}: {problems[0].message}", problems)

    async def _owned(self, principal: Principal, agent_id: str) -> dict[str, Any]:
        # Read by _id alone, then check the tenant: one indexed read on every backend, and no other org's agent leaks.
        doc = await self._db[AGENTS].find_one({"_id": agent_id})
        if doc is None or doc["org_id"] != principal.org_id or doc.get("deleted_at") is not None:
            raise not_found("Agent")
        return doc

    async def list_agents(self, principal: Principal) -> list[AgentSummary]:
        cursor = self._db[AGENTS].find({"org_id": principal.org_id, "deleted_at": None}).sort("updated_at", -1)
        return [_summary(doc) async for doc in cursor]

    async def create(self, principal: Principal, body: AgentCreate, agent_id: str | None = None) -> AgentOut:
        """`agent_id` only for seeding with fixed ids; a second create with the same id raises DuplicateKeyError."""
        agent_id, now = agent_id or new_id(), utcnow()
        await self._check_hand_offs(principal, body.config)
        await self._insert_version(principal, agent_id, 1, body.config, "created")
        doc = {
            "_id": agent_id, "org_id": principal.org_id, "name": body.name, "description": body.description,
            "current_version": 1, "created_at": now, "updated_at": now, "created_by": principal.actor,
            "deleted_at": None,
        }
        await self._db[AGENTS].insert_one(doc)
        await self._audit.record(principal.org_id, principal, "agent.created", "agent", agent_id, {"name": body.name})
        return AgentOut(**_summary(doc).model_dump(), config=body.config)

    async def _insert_version(
        self, principal: Principal, agent_id: str, version: int, config: AgentConfig, note: str | None
    ) -> None:
        await self._check_targets(principal.org_id, config)
        await self._secrets.check_refs(principal.org_id, config)
        await self._db[AGENT_VERSIONS].insert_one({
            "_id": version_id(agent_id, version), "org_id": principal.org_id, "agent_id": agent_id,
            "version": version, "config": config.model_dump(mode="json"), "created_at": utcnow(),
            "created_by": principal.actor, "note": note,
        })

    async def _check_hand_offs(self, principal: Principal, config: AgentConfig) -> None:
        """A flow may hand the caller only to a live agent of the same organisation (422 naming the hand-off)."""
        if config.flow is None:
            return
        for index, hand_off in enumerate(config.flow.hand_offs):
            target = await self._db[AGENTS].find_one({"_id": hand_off.agent_id}, {"org_id": 1, "deleted_at": 1})
            if target is None or target["org_id"] != principal.org_id or target.get("deleted_at") is not None:
                message = f"hand-off {hand_off.name!r}: agent {hand_off.agent_id!r} does not exist or was deleted"
                raise ApiError(422, "validation_error", message, [
                    ErrorDetail(path=f"body.config.flow.hand_offs.{index}.agent_id", message=message)])

    async def get(self, principal: Principal, agent_id: str) -> AgentOut:
        doc = await self._owned(principal, agent_id)
        version = await self._db[AGENT_VERSIONS].find_one({"_id": version_id(agent_id, doc["current_version"])})
        if version is None:
            raise not_found("Agent version")
        return AgentOut(**_summary(doc).model_dump(), config=AgentConfig.model_validate(version["config"]))

    async def update(self, principal: Principal, agent_id: str, body: AgentUpdate) -> AgentOut:
        doc = await self._owned(principal, agent_id)
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = body.name
        if body.description is not None:
            changes["description"] = body.description
        if body.config is not None:
            current = doc["current_version"]
            if body.base_version is not None and body.base_version != current:
                raise conflict(f"The agent changed since version {body.base_version} (now {current}); reload it",
                               code="version_conflict")
            await self._check_hand_offs(principal, body.config)
            try:
                await self._insert_version(principal, agent_id, current + 1, body.config, body.note)
            except DuplicateKeyError:
                await self._repair_current_version(agent_id, current)
                raise conflict("Someone else saved this agent at the same time; reload it",
                               code="version_conflict") from None
            changes["current_version"] = current + 1
        if changes:
            changes["updated_at"] = utcnow()
            await self._db[AGENTS].update_one({"_id": agent_id}, {"$set": changes})
            await self._audit.record(principal.org_id, principal, "agent.updated", "agent", agent_id,
                                     {"fields": sorted(k for k in changes if k != "updated_at")})
        return await self.get(principal, agent_id)

    async def _repair_current_version(self, agent_id: str, current: int) -> None:
        # A crash between inserting version n+1 and moving the pointer would otherwise block every later edit.
        latest = current
        while await self._db[AGENT_VERSIONS].find_one({"_id": version_id(agent_id, latest + 1)}, {"_id": 1}):
            latest += 1
        if latest != current:
            await self._db[AGENTS].update_one({"_id": agent_id}, {"$set": {"current_version": latest}})

    async def delete(self, principal: Principal, agent_id: str) -> None:
        await self._owned(principal, agent_id)
        linked = await self._db[PHONE_NUMBERS].find_one({"org_id": principal.org_id, "agent_id": agent_id},
                                                        {"number": 1})
        if linked is not None:
            raise conflict(f"Agent answers {linked['number']}; unlink the number first", code="agent_in_use")
        # Soft delete: calls keep pointing at the versions they used.
        await self._db[AGENTS].update_one({"_id": agent_id}, {"$set": {"deleted_at": utcnow()}})
        await self._audit.record(principal.org_id, principal, "agent.deleted", "agent", agent_id)

    async def versions(self, principal: Principal, agent_id: str) -> list[AgentVersionOut]:
        await self._owned(principal, agent_id)
        cursor = self._db[AGENT_VERSIONS].find({"agent_id": agent_id}).sort("version", -1).limit(500)
        return [_version_out(v) async for v in cursor if v["org_id"] == principal.org_id]

    async def version(self, principal: Principal, agent_id: str, version: int) -> AgentVersionOut:
        await self._owned(principal, agent_id)
        doc = await self._db[AGENT_VERSIONS].find_one({"_id": version_id(agent_id, version)})
        if doc is None or doc["org_id"] != principal.org_id:
            raise not_found("Agent version")
        return _version_out(doc)

    async def restore(self, principal: Principal, agent_id: str, version: int) -> AgentOut:
        old = await self.version(principal, agent_id, version)
        return await self.update(principal, agent_id, AgentUpdate(config=old.config, note=f"restored version {version}"))

    # ---------------------------------------------------------------- for the internal API

    async def record_test_run(self, principal: Principal, agent_id: str, run: AgentTestRunIn) -> AgentTestRunOut:
        """Keeps a suite's results with the agent version it ran against, so a change shows what it broke."""
        doc = await self._owned(principal, agent_id)
        if run.version > doc["current_version"]:
            raise ApiError(422, "validation_error", f"agent {agent_id} has no version {run.version}")
        counts = result_counts(run.results)
        now = utcnow()
        stored = {"_id": new_id(), "org_id": principal.org_id, "agent_id": agent_id, "created_at": now,
                  "started_at": now, "finished_at": now, "status": "failed" if counts["failed"] else "passed",
                  "scenarios": len(run.results), **run.model_dump(), **counts}
        await self._db[AGENT_TEST_RUNS].insert_one(stored)
        return test_run_out(stored)

    async def test_runs(self, principal: Principal, agent_id: str, limit: int = 50) -> list[AgentTestRunOut]:
        await self._owned(principal, agent_id)
        cursor = self._db[AGENT_TEST_RUNS].find({"agent_id": agent_id, "org_id": principal.org_id})
        return [test_run_out(doc) async for doc in cursor.sort("created_at", -1).limit(limit)]

    async def load_for_call(self, agent_id: str) -> tuple[dict[str, Any], AgentConfig] | None:
        doc = await self._db[AGENTS].find_one({"_id": agent_id})
        if doc is None or doc.get("deleted_at") is not None:
            return None
        version = await self._db[AGENT_VERSIONS].find_one({"_id": version_id(agent_id, doc["current_version"])})
        if version is None:
            return None
        return doc, await self._for_call(doc["org_id"], AgentConfig.model_validate(version["config"]))

    async def load_version_config(self, agent_id: str, version: int) -> AgentConfig | None:
        doc = await self._db[AGENT_VERSIONS].find_one({"_id": version_id(agent_id, version)})
        return await self._for_call(doc["org_id"], AgentConfig.model_validate(doc["config"])) if doc else None

    async def _for_call(self, org_id: str, config: AgentConfig) -> AgentConfig:
        """Custom endpoints saved while the organisation allowed them are dropped once it no longer does."""
        return config if await self._custom_endpoints_allowed(org_id) else platform_endpoints_only(config)


def _summary(doc: dict[str, Any]) -> AgentSummary:
    return AgentSummary(id=doc["_id"], name=doc["name"], description=doc.get("description", ""),
                        version=doc["current_version"], created_at=doc["created_at"], updated_at=doc["updated_at"])


def _version_out(doc: dict[str, Any]) -> AgentVersionOut:
    return AgentVersionOut(version=doc["version"], created_at=doc["created_at"], created_by=doc.get("created_by"),
                           note=doc.get("note"), config=AgentConfig.model_validate(doc["config"]))


def result_counts(results: list[ScenarioResultIn]) -> dict[str, int]:
    return {s: sum(r.status == s for r in results) for s in ("passed", "failed", "skipped")}


def test_run_out(doc: dict[str, Any]) -> AgentTestRunOut:
    return AgentTestRunOut.model_validate({"id": doc["_id"], **doc})
