"""The demo seed: demo@example.com with an organisation and the sample agents, created once however often it runs."""

from __future__ import annotations

import asyncio
import json

import httpx

from backend.db.collections import AGENTS, USERS
from backend.services.container import Services
from backend.services.seed import AGENTS_DIR, DEMO_EMAIL, DEMO_ORG_ID, DEMO_PASSWORD, seed_demo


async def test_seed_is_idempotent_and_usable(client: httpx.AsyncClient, services: Services) -> None:
    await asyncio.gather(*(seed_demo(services.db, services.passwords, services.agents) for _ in range(2)))
    await seed_demo(services.db, services.passwords, services.agents)
    assert await services.db[USERS].count_documents({"email": DEMO_EMAIL}) == 1
    names = sorted(json.loads(p.read_text())["name"] for p in AGENTS_DIR.glob("*.json"))
    assert names, "data/agents/ holds at least one sample agent"
    stored = [a["name"] async for a in services.db[AGENTS].find({"org_id": DEMO_ORG_ID})]
    assert sorted(stored) == names
    login = await client.post("/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert login.status_code == 200
    agents = (await client.get("/api/v1/agents", headers={"Authorization": f"Bearer {login.json()['access_token']}"}))
    assert {a["name"] for a in agents.json()} == set(names)
