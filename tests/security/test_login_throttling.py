"""Finding 9: throttling that an attacker cannot turn against everyone else.

Behind a proxy every client used to share the proxy's address (30 bad logins locked out all users), and ten wrong
passwords for someone's email locked its owner out. Now the trusted proxy's X-Forwarded-For names the client,
guessing is cut off per (email, client address), and the account itself only slows down."""

from __future__ import annotations

import uuid

import httpx
from backend_testkit import register
from fastapi import FastAPI
from security_testkit import asgi_client

PROXY = "10.0.0.1"  # the strict backend's TRUSTED_PROXIES


def via_proxy(client_ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"{client_ip}"}


async def test_wrong_passwords_for_someone_elses_email_do_not_lock_its_owner_out(
        client: httpx.AsyncClient, strict_backend: FastAPI) -> None:
    victim = await register(client, "victim")
    async with asgi_client(strict_backend, "203.0.113.66") as attacker:
        codes = [(await attacker.post("/api/v1/auth/login", json={"email": victim.email, "password": f"guess-{i}x!"}))
                 .status_code for i in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[-1] == 429, codes  # the guesser is cut off ...
    async with asgi_client(strict_backend, "198.51.100.7") as owner:
        resp = await owner.post("/api/v1/auth/login", json={"email": victim.email, "password": victim.password})
    assert resp.status_code == 200, resp.text  # ... and the owner still gets in


async def test_behind_a_trusted_proxy_one_clients_attempts_do_not_block_another(
        client: httpx.AsyncClient, strict_backend: FastAPI) -> None:
    victim = await register(client, "proxied")
    async with asgi_client(strict_backend, PROXY) as proxy:
        spray = [(await proxy.post("/api/v1/auth/login", headers=via_proxy("203.0.113.9"),
                                   json={"email": f"x{i}-{uuid.uuid4().hex[:4]}@example.com", "password": "nope-nope-1"}))
                 .status_code for i in range(8)]
        assert spray[-1] == 429, spray
        resp = await proxy.post("/api/v1/auth/login", headers=via_proxy("198.51.100.23"),
                                json={"email": victim.email, "password": victim.password})
    assert resp.status_code == 200, resp.text


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(strict_backend: FastAPI) -> None:
    async with asgi_client(strict_backend, "203.0.113.10") as attacker:
        codes = [(await attacker.post("/api/v1/auth/login", headers=via_proxy(f"192.0.2.{i}"),
                                      json={"email": f"y{i}@example.com", "password": "nope-nope-1"})).status_code
                 for i in range(8)]
    assert codes[-1] == 429, codes


async def test_invitation_acceptance_is_throttled_per_client_behind_the_proxy(
        client: httpx.AsyncClient, strict_backend: FastAPI) -> None:
    owner = await register(client, "inviter")
    invite = await client.post("/api/v1/org/invitations", json={"email": f"new-{uuid.uuid4().hex[:6]}@example.com"},
                               headers=owner.headers)
    token = invite.json()["token"]
    async with asgi_client(strict_backend, PROXY) as proxy:
        spray = [(await proxy.post("/api/v1/auth/invitations/accept", headers=via_proxy("203.0.113.77"),
                                   json={"token": f"inv_{uuid.uuid4().hex}_{uuid.uuid4().hex}",
                                         "password": "long-password-1", "name": "x"})).status_code
                 for _ in range(8)]
        assert spray[-1] == 429, spray
        accepted = await proxy.post("/api/v1/auth/invitations/accept", headers=via_proxy("198.51.100.99"),
                                    json={"token": token, "password": "long-password-1", "name": "new"})
    assert accepted.status_code == 200, accepted.text


def test_the_account_delay_grows_exponentially_and_is_capped() -> None:
    from backend.services.auth import (
        login_delay_s,  # here, so this file also runs against the code before the fix
    )

    delays = [login_delay_s(n, free=3, max_delay_s=8.0) for n in range(12)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:7] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == 8.0
