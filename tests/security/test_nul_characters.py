"""Finding: a NUL character (JSON "\\u0000") in a string or key reached the database. PostgreSQL's jsonb (FerretDB's
local default store) cannot hold one, so the write failed with a 500 (found by tests/backend/test_api_fuzz.py).
The attacker sends NULs in a body, in a key and in a query string; each gets a 422 and nothing is stored, while the
six characters \\u0000 written as text still save."""

from __future__ import annotations

import httpx
from backend_testkit import register


async def test_a_nul_in_a_body_string_gets_422_and_stores_nothing(client: httpx.AsyncClient) -> None:
    owner = await register(client, "nulbody")
    resp = await client.post("/api/v1/agents", json={"name": "evil\u0000agent", "config": {"system_prompt": "Hi."}},
                             headers=owner.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "validation_error"
    assert "NUL" in resp.json()["error"]["message"]
    listed = await client.get("/api/v1/agents", headers=owner.headers)
    assert listed.status_code == 200
    assert not [a for a in listed.json() if a["name"].startswith("evil")]


async def test_a_nul_in_a_key_gets_422(client: httpx.AsyncClient) -> None:
    owner = await register(client, "nulkey")
    resp = await client.post("/api/v1/agents", content=b'{"name": "ok", "\\u0000x": 1}',
                             headers={**owner.headers, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text


async def test_a_nul_in_a_query_string_gets_422(client: httpx.AsyncClient) -> None:
    owner = await register(client, "nulquery")
    resp = await client.get("/api/v1/calls?status=%00", headers=owner.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "validation_error"


async def test_the_text_backslash_u0000_is_not_a_nul(client: httpx.AsyncClient) -> None:
    owner = await register(client, "nultext")
    resp = await client.post("/api/v1/agents", json={"name": "literal \\u0000 text", "config": {"system_prompt": "Hi."}},
                             headers=owner.headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "literal \\u0000 text"
