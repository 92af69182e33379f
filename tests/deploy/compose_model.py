"""docker-compose.yml as Compose itself would see it, without a container engine (a unique module name: tests/ is not
a package): `${VAR:-default}` / `${VAR:?error}` interpolation from a given .env, YAML merge keys, profiles, network
aliases and the port each service listens on. Shared by the compose wiring test and the production-like run."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PROFILES = ("cpu", "gpu")
_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}|\$\$")


# What an operator's .env holds (see .env.example, "docker compose"): https public URLs, a secret for everything.
def _sample_secret(name: str) -> str:
    """A fixed 64-hex-digit value per name: passes the services' production check for random-looking secrets."""
    return hashlib.sha256(f"compose-wiring-test:{name}".encode()).hexdigest()


_SECRETS = ("MONGO_ROOT_PASSWORD", "MONGO_APP_PASSWORD", "MINIO_ROOT_PASSWORD", "S3_BACKEND_SECRET_KEY",
            "S3_VOICE_SECRET_KEY", "JWT_SECRET", "ENCRYPTION_KEY", "SERVICE_TOKEN_SECRET", "CALL_TOKEN_SECRET",
            "METRICS_TOKEN", "LLM_API_KEY")
OPERATOR_DOTENV = {
    "PUBLIC_BASE_URL": "https://app.example.com", "VOICE_PUBLIC_BASE_URL": "https://voice.example.com",
    "MINIO_ROOT_USER": "voiceagent-root", **{name: _sample_secret(name) for name in _SECRETS},
}
HOST_PORT = re.compile(r"(?:^|(?<=//)|(?<=@))(?P<host>[A-Za-z0-9_-]+):(?P<port>\d+)")


def readdress(value: str, addresses: dict[str, str]) -> str:
    """`value` with each compose host:port found in `addresses` replaced (e.g. "backend:8000" -> a loopback port)."""
    return HOST_PORT.sub(lambda m: addresses.get(m.group(0), m.group(0)), value)


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR:?error}; $$ is a literal $."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg") or ""
        value = env.get(name, "")
        if value:
            return value
        if op == ":?":
            raise MissingVariable(f"{name}: {arg}")
        return interpolate(arg, env) if op == ":-" else ""

    return _VAR.sub(sub, text)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


@dataclass
class Service:
    name: str
    spec: dict[str, Any]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def profiles(self) -> list[str]:
        return list(self.spec.get("profiles", []))

    @property
    def image(self) -> str:
        return str(self.spec.get("image", ""))

    @property
    def command(self) -> list[str]:
        return [str(part) for part in self.spec.get("command", [])]

    @property
    def network_names(self) -> set[str]:
        aliases = (self.spec.get("networks") or {}).get("default", {}) or {}
        return {self.name, *aliases.get("aliases", [])}

    def started_by(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles


def load(env: dict[str, str]) -> dict[str, Service]:
    """The services with `env` (what .env would hold) interpolated; a missing required variable raises."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    services = {}
    for name, spec in _interpolate_tree(raw["services"], env).items():
        environment = {key: "" if value is None else str(value) for key, value in (spec.get("environment") or {}).items()}
        services[name] = Service(name, spec, environment)
    return services


def required_variables() -> set[str]:
    """Every ${VAR:?...} in the file: what .env must set."""
    return {m.group("name") for m in _VAR.finditer(COMPOSE_FILE.read_text()) if m.group("op") == ":?"}


# Empty secrets that fall back to another one (backend/campaigns/settings.py: derived from SERVICE_TOKEN_SECRET).
DERIVED_SECRETS = {"CAMPAIGN_CALLBACK_SECRET"}


def required_names(cls: type[BaseSettings]) -> set[str]:
    """What a settings class needs from the environment: fields with no default, and secrets whose default is
    empty (the service cannot do its job without them)."""
    names = set()
    for name, info in cls.model_fields.items():
        empty_secret = isinstance(info.default, SecretStr) and not info.default.get_secret_value()
        if info.is_required() or empty_secret:
            names.add(name.upper())
    return names - DERIVED_SECRETS
