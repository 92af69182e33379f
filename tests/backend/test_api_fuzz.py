"""The REST API fuzzed with schemathesis against its own OpenAPI document, on a live backend process (real FerretDB
and MinIO): every operation, valid and invalid inputs, as a signed-in owner (JWT) for /api/v1 and with a service
token for /internal/v1. No response may be a 5xx, and every response must match what the document promises
(status code, content type, body schema).

Examples per operation are bounded (FUZZ_EXAMPLES, default 12) and derandomized, so a run is reproducible and takes
a minute or two on 2 cores; raise FUZZ_EXAMPLES for a deeper local run, set FUZZ_SEED=<n> to explore other cases."""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stack_helpers import run_backend

from core.service_auth import mint_service_token

pytestmark = pytest.mark.timeout(900)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("FUZZ_SEED")  # unset: derandomized (the same cases every run); set: other cases, reproducibly
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}
# Ending the fuzzing user's own session would turn the rest of the run into 401s.
SESSION_ENDING = "^/api/v1/auth/(logout|switch-organization)$"
ENDLESS = "^/api/v1/live/stream$"  # the organisation's live event stream never ends (tests/backend/test_live.py)


@pytest.fixture(scope="module")
def live_backend(data_services: dict[str, str], state_dir: Path, tts_url: str, embed_url: str) -> Iterator[str]:
    env = {
        **data_services,
        "TTS_URL": tts_url,  # the voice list and samples proxy the real TTS server
        "EMBEDDINGS_BASE_URL": embed_url,  # knowledge-base uploads are indexed and searched for real
        "MONGODB_DB": f"fuzz_{uuid.uuid4().hex[:8]}",
        "SEED_DEMO": "false",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "REGISTER_PER_IP_PER_HOUR": "100000",
        "LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000",
        "WORKER_POLL_INTERVAL_S": "0.2",
        "LOG_LEVEL": "WARNING",
    }
    yield from run_backend(state_dir, "backend-fuzz", env)


@pytest.fixture(scope="module")
def owner_headers(live_backend: str) -> dict[str, str]:
    """A signed-in owner whose organisation has an agent and a number, so id-taking routes meet real ids too."""
    with httpx.Client(base_url=live_backend, timeout=60) as http:
        resp = http.post("/api/v1/auth/register", json={"email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com",
                                                        "password": "fuzzing-pass-123", "name": "Fuzz",
                                                        "org_name": "Fuzz org"})
        assert resp.status_code == 201, resp.text
        headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
        agent = http.post("/api/v1/agents", json={"name": "Fuzz agent", "config": {"system_prompt": "Be brief."}},
                          headers=headers)
        assert agent.status_code == 201, agent.text
    return headers


def _fuzz_operation(operation: Any, mode: GenerationMode, owner_headers: dict[str, str],
                    statuses: Counter[int]) -> list[str]:
    """Runs EXAMPLES generated cases against one operation; returns one line per failing case (not raised, so every
    operation is fuzzed and the report lists them all)."""
    failures: list[str] = []

    @seed(int(SEED or 0))
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: Any) -> None:
        if case.path.startswith("/internal/"):
            secret = os.environ["SERVICE_TOKEN_SECRET"]
            headers = {"Authorization": f"Bearer {mint_service_token(secret, 'voice-server')}"}
        else:
            headers = owner_headers
        # The generator also fills the documented credential headers with random values; those would only test
        # auth (tests/backend/test_auth.py does), so the fuzzer always presents real credentials.
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
        try:
            response = case.call(headers=headers, timeout=60)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as exc:  # noqa: BLE001 - a FailureGroup or a transport error: record and go on
            if isinstance(exc, KeyboardInterrupt):
                raise
            body = case.body if not isinstance(case.body, bytes) else case.body[:80]
            failures.append(f"{operation.label} [{mode.value}] {type(exc).__name__}: {str(exc)[:600]}\n"
                            f"    path={case.formatted_path} query={case.query} body={str(body)[:1500]}")

    try:
        run()
    except Unsatisfiable:
        pass  # negative mode on an operation with nothing to make invalid (no parameters, no body)
    return failures


def test_no_server_errors_and_responses_match_the_schema(live_backend: str, owner_headers: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{live_backend}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if not re.match(SESSION_ENDING, op.path) and not re.match(ENDLESS, op.path)]
    assert len(fuzzed) >= 60, [op.label for op in fuzzed]
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in fuzzed:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.extend(_fuzz_operation(operation, mode, owner_headers, statuses))
    print(f"fuzzed {len(fuzzed)} operations, {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(failures)


async def test_what_the_fuzzer_found_stays_fixed(client: httpx.AsyncClient) -> None:
    """The fuzzer's findings as fixed cases (in-process backend), so they are checked on every run, not by chance."""
    resp = await client.post("/api/v1/auth/register", json={"email": f"found-{uuid.uuid4().hex[:8]}@example.com",
                                                            "password": "fuzzing-pass-123", "name": "F",
                                                            "org_name": "F org"})
    headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    # A body that is not UTF-8: was an undocumented 400, now the 422 of any malformed JSON body.
    garbled = await client.post("/api/v1/agents", content=b"\x9aq\x98",
                                headers={**headers, "Content-Type": "application/json"})
    assert garbled.status_code == 422 and garbled.json()["error"]["details"][0]["path"] == "body", garbled.text
    # What MongoDB cannot store (keys with '.' or a leading '$', integers over 64 bits) in agent variables or
    # tool argument schemas: were 500s.
    for config in ({"variables": {"a.b": "x"}}, {"variables": {"$where": "x"}},
                   *({"tools": [{"kind": "webhook", "name": "t", "description": "d", "url": "https://example.com/t",
                                 "parameters": parameters}]}
                     for parameters in ({"properties": {"a.b": {"type": "string"}}},
                                        {"properties": {"x": {"type": "string", "$ref": "#/x"}}},
                                        {"properties": {}, "x.y": 1},
                                        {"properties": {"n": {"type": "integer", "maximum": 10 ** 20}}}))):
        bad = await client.post("/api/v1/agents", json={"name": "found", "config": config}, headers=headers)
        assert bad.status_code == 422, (config, bad.status_code, bad.text)
        assert bad.json()["error"]["details"][0]["path"].startswith("body.config."), bad.text
