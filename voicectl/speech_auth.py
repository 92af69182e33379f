"""Credentials for the speech servers a process starts and calls itself (the smoke check, the tests, the
benchmarks). Every speech server needs a service token (core/service_auth.py); such a process shares one
SERVICE_TOKEN_SECRET with its children through the environment: the one already set, or a fresh one."""

from __future__ import annotations

import os
import secrets

from core.service_auth import mint_service_token


def local_service_secret() -> str:
    return os.environ.setdefault("SERVICE_TOKEN_SECRET", secrets.token_urlsafe(48))


def speech_token(service: str = "voicectl", org: str | None = None) -> str:
    """A service token (valid for minutes) for a speech server; an OpenAI client's `api_key`."""
    return mint_service_token(local_service_secret(), service, org=org)


def speech_headers(service: str = "voicectl", org: str | None = None) -> dict[str, str]:
    """A fresh `Authorization` header for one HTTP request to a speech server (TTS, LLM, embeddings)."""
    return {"Authorization": f"Bearer {speech_token(service, org)}"}


def riva_metadata(service: str = "voicectl") -> list[list[str]]:
    """`metadata_args` for `riva.client.Auth`: the ASR server's credential."""
    return [["authorization", f"Bearer {speech_token(service)}"]]
