"""The demo account for local runs (SEED_DEMO=true): demo@example.com / demo-password-123, its organisation and the
sample agents in data/agents/. Idempotent: a second start, or a second replica, finds them and does nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path

from pymongo.errors import DuplicateKeyError

from backend.db.collections import AGENTS, MEMBERSHIPS, ORGANIZATIONS, USERS, Db
from backend.db.ids import utcnow
from backend.models.agents import AgentCreate
from backend.security.passwords import Passwords
from backend.security.permissions import Principal, Role
from backend.services.agents import AgentService
from backend.services.auth import membership_id

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-123"  # a documented local-demo credential, not a secret
DEMO_ORG_ID = "demo0000000000000000000000000000"
DEMO_USER_ID = "demo0000000000000000000000000001"
AGENTS_DIR = Path(__file__).resolve().parents[2] / "data" / "agents"


async def seed_demo(db: Db, passwords: Passwords, agents: AgentService, agents_dir: Path = AGENTS_DIR) -> None:
    now = utcnow()
    # Fixed ids make every step an insert that at most one replica wins.
    try:
        await db[ORGANIZATIONS].insert_one({"_id": DEMO_ORG_ID, "name": "Demo organisation", "created_at": now,
                                            "created_by": DEMO_USER_ID})
    except DuplicateKeyError:
        pass
    if await db[USERS].find_one({"_id": DEMO_USER_ID}, {"_id": 1}) is None:
        try:
            await db[USERS].insert_one({"_id": DEMO_USER_ID, "email": DEMO_EMAIL, "name": "Demo User",
                                        "password_hash": await passwords.hash(DEMO_PASSWORD), "created_at": now})
        except DuplicateKeyError:
            log.info("demo user already exists")
    try:
        await db[MEMBERSHIPS].insert_one({"_id": membership_id(DEMO_ORG_ID, DEMO_USER_ID), "org_id": DEMO_ORG_ID,
                                          "user_id": DEMO_USER_ID, "role": Role.owner.value, "created_at": now})
    except DuplicateKeyError:
        pass
    owner = Principal(org_id=DEMO_ORG_ID, role=Role.owner, user_id=DEMO_USER_ID)
    existing = {a["name"] async for a in db[AGENTS].find({"org_id": DEMO_ORG_ID}, {"name": 1})}
    for path in sorted(await asyncio.to_thread(lambda: list(agents_dir.glob("*.json")))):
        spec = AgentCreate.model_validate(json.loads(await asyncio.to_thread(path.read_text)))
        if spec.name in existing:
            continue
        try:
            await agents.create(owner, spec, agent_id=uuid.uuid5(uuid.NAMESPACE_URL, f"demo-agent:{path.stem}").hex)
            log.info("seeded demo agent %r", spec.name)
        except DuplicateKeyError:
            pass  # another replica seeded it at the same moment
