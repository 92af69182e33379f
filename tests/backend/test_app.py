"""Cross-cutting behaviour: one error shape, CORS from settings, security headers, request ids, metrics by route
template, OpenAPI completeness, health, and the UI served at / without shadowing the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from backend_routes import OTHER_SUITES
from backend_testkit import backend_settings, create_agent, register
from fastapi import FastAPI

from backend.main import create_app


async def test_unknown_routes_and_methods_use_the_error_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"code", "message", "details", "request_id"}
    assert missing.json()["error"]["code"] == "not_found"
    method = await client.delete("/api/v1/auth/login")
    assert method.status_code == 405 and method.json()["error"]["code"] == "method_not_allowed"
    assert missing.headers["x-request-id"] == missing.json()["error"]["request_id"]
    traced = await client.get("/api/v1/nothing-here", headers={"X-Request-ID": "trace-abc-123"})
    assert traced.headers["x-request-id"] == "trace-abc-123" and traced.json()["error"]["request_id"] == "trace-abc-123"


async def test_cors_only_for_configured_origins(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = await client.options("/api/v1/agents", headers={"Origin": "http://ui.example.test", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://ui.example.test"
    denied = await client.options("/api/v1/agents", headers={"Origin": "https://evil.example", **preflight})
    assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers
    simple = await client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_wildcard_cors_is_refused() -> None:
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        backend_settings(cors_origins=["*"])
    assert backend_settings(cors_origins="https://a.example, https://b.example/").cors_origins == [
        "https://a.example", "https://b.example"]


async def test_security_headers(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health/live")
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["content-security-policy"].startswith("default-src 'none'")
    assert resp.headers["cache-control"] == "no-store"
    error = await client.get("/api/v1/agents")
    assert error.status_code == 401 and error.headers["x-frame-options"] == "DENY"


async def test_metrics_by_route_template(client: httpx.AsyncClient) -> None:
    owner = await register(client, "metrics")
    agent = await create_agent(client, owner)
    await client.get(f"/api/v1/agents/{agent['id']}", headers=owner.headers)
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/agents/{agent_id}"' in text
    assert agent["id"] not in text  # raw paths never become labels
    assert "http_request_duration_seconds_bucket" in text


async def test_openapi_is_complete(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert op.get("operationId"), (method, path)
            assert op.get("summary") or op.get("description"), (method, path)
            if path.startswith("/api/v1") and not path.startswith(("/api/v1/auth/", *OTHER_SUITES)):
                assert "401" in op["responses"] and "422" in op["responses"], (method, path)
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorResponse"]["examples"]
    assert "examples" in schemas["RegisterRequest"]["properties"]["email"]
    assert "AgentConfig" in schemas and "CallEventBatch" in schemas
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_health(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert health == {"status": "ok", "mongo": "ok", "minio": "ok"}


@pytest.fixture
def ui_app(tmp_path: Path, data_services: dict[str, str]) -> FastAPI:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root>UI</div>")
    (tmp_path / "assets" / "app-1234.js").write_text("console.log('ui')")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return create_app(backend_settings(frontend_dist=str(tmp_path)))


async def test_ui_is_served_with_spa_fallback(ui_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=ui_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui") as http:
        index = await http.get("/")
        assert index.status_code == 200 and "id=root" in index.text
        assert "default-src 'self'" in index.headers["content-security-policy"]
        deep = await http.get("/calls/abc123")
        assert deep.status_code == 200 and "id=root" in deep.text
        asset = await http.get("/assets/app-1234.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert (await http.get("/favicon.svg")).status_code == 200
        assert (await http.get("/assets/missing.js")).status_code == 404
        for path in ("/api/v1/unknown", "/internal/v1/unknown", "/health/unknown", "/metricsx"):
            resp = await http.get(path)
            assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found", path
        assert (await http.get("/openapi.json")).json()["openapi"].startswith("3.")
        traversal = await http.get("/..%2f..%2fetc/passwd")
        assert traversal.status_code == 404 or "root:" not in traversal.text
