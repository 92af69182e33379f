"""Knowledge bases through the API, against the real embedding server, MinIO (LanceDB tables) and FerretDB:
upload -> ingestion worker -> ready with chunks -> hybrid search finds the answer; re-upload, delete, filters,
and every bad input the issue lists (corrupt/encrypted PDF, empty, too large, wrong type, images only, embeddings
endpoint down)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from backend_testkit import AGENT_CONFIG, Account, backend_settings, register, service_headers
from fastapi import FastAPI
from pypdf import PdfWriter
from stack_helpers import server_env, start_process

from backend.main import create_app
from voicectl.launch import embed_process
from voicectl.procs import free_port

DOCS = Path(__file__).resolve().parents[1] / "knowledge_data"


def _app(embed_url: str, **overrides: Any) -> FastAPI:
    return create_app(backend_settings(mongodb_db=f"kb_{uuid.uuid4().hex[:8]}", embeddings_base_url=embed_url,
                                       knowledge_max_upload_bytes=200_000, knowledge_retry_backoff_s=0.2,
                                       knowledge_ingest_attempts=2, **overrides))


@pytest.fixture(scope="module")
async def kb_client(data_services: dict[str, str], embed_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(embed_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40001))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def _kb(client: httpx.AsyncClient, owner: Account, name: str = "Clinic") -> str:
    resp = await client.post("/api/v1/knowledge-bases", json={"name": name}, headers=owner.headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _upload(client: httpx.AsyncClient, owner: Account, kb: str, name: str, data: bytes,
                  metadata: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(f"/api/v1/knowledge-bases/{kb}/sources", headers=owner.headers,
                             files={"file": (name, data)}, data={"metadata": json.dumps(metadata or {})})


async def _settled(client: httpx.AsyncClient, owner: Account, kb: str, source_id: str,
                   timeout_s: float = 120) -> dict[str, Any]:
    for _ in range(int(timeout_s / 0.25)):
        sources = (await client.get(f"/api/v1/knowledge-bases/{kb}/sources", headers=owner.headers)).json()
        source = next(s for s in sources if s["id"] == source_id)
        if source["status"] in ("ready", "failed"):
            return dict(source)
        await asyncio.sleep(0.25)
    raise AssertionError(f"source still {source['status']}")


async def _search(client: httpx.AsyncClient, owner: Account, kb: str, question: str,
                  **extra: Any) -> list[dict[str, Any]]:
    resp = await client.post(f"/api/v1/knowledge-bases/{kb}/search", headers=owner.headers,
                             json={"question": question, **extra})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["chunks"])


async def _knowledge_version(client: httpx.AsyncClient, agent_id: str) -> int:
    """What a voice server is told when it resolves a call to the agent."""
    resp = await client.get(f"/internal/v1/agents/{agent_id}", headers=service_headers())
    assert resp.status_code == 200, resp.text
    version = resp.json()["knowledge_version"]
    assert isinstance(version, int)
    return version


async def test_upload_index_search_replace_delete(kb_client: httpx.AsyncClient) -> None:
    owner = await register(kb_client, "kb")
    kb = await _kb(kb_client, owner)
    prices = await _upload(kb_client, owner, kb, "clinic_prices.md", (DOCS / "clinic_prices.md").read_bytes())
    assert prices.status_code == 202 and prices.json()["status"] == "queued", prices.text
    policies = await kb_client.post(f"/api/v1/knowledge-bases/{kb}/sources/text", headers=owner.headers, json={
        "name": "Policies", "text": (DOCS / "clinic_policies.txt").read_text(), "metadata": {"branch": "Downtown"}})
    assert policies.status_code == 202, policies.text
    ready = await _settled(kb_client, owner, kb, prices.json()["id"])
    assert ready["status"] == "ready" and ready["chunk_count"] >= 2 and ready["progress"] == 1.0, ready
    assert (await _settled(kb_client, owner, kb, policies.json()["id"]))["status"] == "ready"

    chunks = await _search(kb_client, owner, kb, "How much is teeth whitening?")
    assert chunks and "349 dollars" in chunks[0]["text"] and chunks[0]["source_name"] == "clinic_prices.md"
    assert 0 < chunks[0]["score"] <= 1 and chunks[0]["vector_score"] > 0.3
    weekend = await _search(kb_client, owner, kb, "Who is the dentist on call on weekends?", top_k=1)
    assert "Brown" in weekend[0]["text"]
    # Metadata filter: only the policies carry branch=Downtown.
    filtered = await _search(kb_client, owner, kb, "How much is teeth whitening?", filters={"branch": "Downtown"})
    assert filtered and all(c["source_name"] == "Policies" for c in filtered)
    # A threshold nothing reaches.
    assert await _search(kb_client, owner, kb, "quantum chromodynamics lecture", score_threshold=0.9) == []

    listed = (await kb_client.get("/api/v1/knowledge-bases", headers=owner.headers)).json()
    assert listed[0]["source_count"] == 2 and listed[0]["chunk_count"] > 2

    # Calls to an agent with this knowledge base carry the organisation's knowledge version (voice servers use
    # no local copy of the table older than that): each change to the table moves it on.
    agent = await kb_client.post("/api/v1/agents", headers=owner.headers, json={
        "name": "Clinic", "config": {**AGENT_CONFIG, "knowledge": {"knowledge_base_ids": [kb]}}})
    assert agent.status_code == 201, agent.text
    indexed_version = await _knowledge_version(kb_client, agent.json()["id"])
    assert indexed_version >= 2  # two sources ingested

    # Re-upload under the same name replaces: new revision, old chunks gone once the new ones are in.
    new_prices = b"# Price list\n\nAn in-office teeth whitening session now costs 399 dollars.\n"
    again = await _upload(kb_client, owner, kb, "clinic_prices.md", new_prices)
    assert again.json()["id"] == prices.json()["id"] and again.json()["revision"] == 2
    assert (await _settled(kb_client, owner, kb, prices.json()["id"]))["chunk_count"] == 1
    texts = [c["text"] for c in await _search(kb_client, owner, kb, "teeth whitening price", top_k=10)]
    assert any("399" in t for t in texts) and not any("349" in t for t in texts)
    reuploaded_version = await _knowledge_version(kb_client, agent.json()["id"])
    assert reuploaded_version > indexed_version

    # Another organisation sees none of it.
    other = await register(kb_client, "kb-other")
    assert (await kb_client.post(f"/api/v1/knowledge-bases/{kb}/search", headers=other.headers,
                                 json={"question": "whitening"})).status_code == 404

    deleted = await kb_client.delete(f"/api/v1/knowledge-bases/{kb}/sources/{prices.json()['id']}",
                                     headers=owner.headers)
    assert deleted.status_code == 204
    assert not any("399" in c["text"] for c in await _search(kb_client, owner, kb, "whitening", top_k=10))
    assert await _knowledge_version(kb_client, agent.json()["id"]) > reuploaded_version
    assert (await kb_client.delete(f"/api/v1/knowledge-bases/{kb}", headers=owner.headers)).status_code == 204
    assert (await kb_client.get(f"/api/v1/knowledge-bases/{kb}", headers=owner.headers)).status_code == 404


def _pdf(encrypt: bool = False) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)  # a page with no text: what a scanned image page gives
    if encrypt:
        writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_bad_uploads_get_clear_errors_and_lose_nothing(kb_client: httpx.AsyncClient) -> None:
    owner = await register(kb_client, "kb-bad")
    kb = await _kb(kb_client, owner)
    good = await _upload(kb_client, owner, kb, "policies.txt", (DOCS / "clinic_policies.txt").read_bytes())
    assert (await _settled(kb_client, owner, kb, good.json()["id"]))["status"] == "ready"

    empty = await _upload(kb_client, owner, kb, "empty.txt", b"  \n")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_file"
    big = await _upload(kb_client, owner, kb, "big.txt", b"a" * 200_001)
    assert big.status_code == 413
    exe = await _upload(kb_client, owner, kb, "setup.exe", b"MZ\x90\x00")
    assert exe.status_code == 415 and "unsupported" in exe.json()["error"]["message"]
    meta = await _upload(kb_client, owner, kb, "x.txt", b"hello", metadata={"a.b": "$x"})
    assert meta.status_code == 400

    reasons = {}
    for name, data in [("corrupt.pdf", b"%PDF-1.7 this is not really a pdf"), ("locked.pdf", _pdf(encrypt=True)),
                       ("scan.pdf", _pdf()), ("binary.txt", b"\x00\x01\x02\xff" * 10)]:
        resp = await _upload(kb_client, owner, kb, name, data)
        assert resp.status_code == 202, resp.text
        settled = await _settled(kb_client, owner, kb, resp.json()["id"])
        assert settled["status"] == "failed" and settled["chunk_count"] == 0
        reasons[name] = settled["error"]
    assert "corrupt" in reasons["corrupt.pdf"] and "encrypted" in reasons["locked.pdf"]
    assert "images" in reasons["scan.pdf"] and "binary" in reasons["binary.txt"]
    # The good source is still searchable.
    assert "Brown" in (await _search(kb_client, owner, kb, "weekend emergency dentist"))[0]["text"]


async def test_embeddings_endpoint_down_retries_then_fails_keeping_old_chunks(
        data_services: dict[str, str], speech_state: Path) -> None:
    """A real embedding server that goes down after the first upload: the re-upload is retried with the reason
    shown, then failed; the chunks indexed earlier stay; the test box answers 503, not 500."""
    port = free_port()
    server = start_process(embed_process(speech_state / "embed-down", port=port, env=server_env(speech_state)))
    app = _app(f"http://127.0.0.1:{port}/v1", embeddings_timeout_s=1.0)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                owner = await register(http, "kb-down")
                kb = await _kb(http, owner)
                first = await _upload(http, owner, kb, "policies.txt", (DOCS / "clinic_policies.txt").read_bytes())
                assert (await _settled(http, owner, kb, first.json()["id"]))["status"] == "ready"
                server.stop()
                resp = await _upload(http, owner, kb, "policies.txt", b"Parking is now on Elm Street.")
                settled = await _settled(http, owner, kb, resp.json()["id"])
                assert settled["status"] == "failed" and "2 attempts" in settled["error"], settled
                assert settled["chunk_count"] > 1  # revision 1's chunks are still the searchable ones
                store = app.state.services.knowledge._store  # noqa: SLF001 - look at the store directly
                rows = store._table(owner.org_id).search().where("source_id = '" + first.json()["id"] + "'") \
                    .limit(100).to_list()  # noqa: SLF001
                assert rows and all(r["revision"] == 1 for r in rows) and any("Maplewood" in r["text"] for r in rows)
                down = await http.post(f"/api/v1/knowledge-bases/{kb}/search", headers=owner.headers,
                                       json={"question": "parking"})
                assert down.status_code == 503 and down.json()["error"]["code"] == "retrieval_unavailable"
    finally:
        server.stop()
