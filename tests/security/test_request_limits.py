"""Finding 7: request bodies are capped while they stream in, and a callback's token is checked before its body is
parsed. The attacker sends oversized JSON, declares a huge upload, streams an endless chunked body, and posts a
malformed body to a campaign callback with a wrong token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from backend_testkit import register


async def test_a_json_body_over_the_cap_gets_413(client: httpx.AsyncClient) -> None:
    owner = await register(client, "bigjson")
    body = {"name": "big", "description": "x" * (200 * 1024)}
    resp = await client.post("/api/v1/agents", json=body, headers=owner.headers)
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["code"] == "payload_too_large"


async def test_an_upload_declaring_a_huge_length_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    owner = await register(client, "bigcsv")
    cid = "0" * 32  # no campaign needed: the declared length alone is refused, before routing
    headers = {**owner.headers, "Content-Type": "multipart/form-data; boundary=x",
               "Content-Length": str(50 * 1024 * 1024)}
    resp = await client.post(f"/api/v1/campaigns/{cid}/contacts", content=b"--x--\r\n", headers=headers)
    assert resp.status_code == 413, resp.text


async def test_a_streamed_body_is_cut_off_once_it_passes_the_cap(client: httpx.AsyncClient) -> None:
    owner = await register(client, "chunked")

    async def endless() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(1000):  # 16 MB if nobody stops it
            yield b"a" * 16384

    resp = await client.post("/api/v1/agents", content=endless(),
                             headers={**owner.headers, "Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text


async def test_a_campaign_callback_with_a_wrong_token_is_refused_before_its_body_is_parsed(
        client: httpx.AsyncClient) -> None:
    # A malformed multipart body: parsing it first would answer 400; the wrong token must answer 403 first.
    resp = await client.post("/api/v1/campaign-callbacks/twilio/attempt-1/wrong-token-123/status",
                             content=b"--broken\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" + b"z" * 1000,
                             headers={"Content-Type": "multipart/form-data; boundary=other"})
    assert resp.status_code == 403, resp.text
