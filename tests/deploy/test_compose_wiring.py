"""docker-compose.yml without a container engine: for each speech profile, every service's environment points at hosts
(and ports) that the profile starts, every variable its settings class needs is set and is a field it reads, the
speech servers of both profiles answer to the same names, images are pinned, only the UI and the voice server are
published, no demo owner is seeded, and each service reaches MinIO with its own user instead of the root keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from compose_model import (
    COMPOSE_FILE,
    HOST_PORT,
    OPERATOR_DOTENV,
    PROFILES,
    REPO,
    MissingVariable,
    Service,
    load,
    required_names,
    required_variables,
)
from pydantic_settings import BaseSettings

from backend.config import BackendSettings
from provision.config import ProvisionSettings
from speech.asr.config import AsrSettings
from speech.embed.config import EmbedServerSettings
from speech.llm.config import LlmServerSettings
from speech.tts.config import TtsSettings
from voice_server.config import VoiceServerSettings

DOTENV = OPERATOR_DOTENV
# Each of our services, by what its command runs.
SETTINGS_BY_COMMAND: dict[str, type[BaseSettings]] = {
    "backend.main": BackendSettings, "voice_server.main": VoiceServerSettings, "speech.asr": AsrSettings,
    "speech.tts": TtsSettings, "speech.llm": LlmServerSettings, "provision": ProvisionSettings,
    "speech.embed": EmbedServerSettings,
}
# Settings read under a second name (TtsSettings.tts_engines accepts TTS_ENGINES or TTS_ENGINE).
ALIASES = {"TTS_ENGINES"}
# Ports of the images we do not build (their own documented defaults).
IMAGE_PORTS = {"mongo": {27017}, "minio/minio": {9000}}
VERSION = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]


def settings_class(service: Service) -> type[BaseSettings] | None:
    command = " ".join(service.command)
    return next((cls for key, cls in SETTINGS_BY_COMMAND.items() if key in command), None)


def listening_ports(service: Service) -> set[int]:
    command = service.command
    ports = {int(command[i + 1]) for i, part in enumerate(command[:-1]) if part == "--port"}
    ports |= {int(part.rsplit(":", 1)[1]) for part in command if part.startswith("--riva-uri=")}
    cls = settings_class(service)
    if cls is not None and not ports:
        for name, info in cls.model_fields.items():
            if name.endswith("_port"):
                ports.add(int(service.environment.get(name.upper(), info.default)))
    for image, image_ports in IMAGE_PORTS.items():
        if service.image.split(":")[0] == image:
            ports |= image_ports
    return ports


def started(profile: str) -> dict[str, Service]:
    return {name: s for name, s in load(DOTENV).items() if s.started_by(profile)}


def our_services(profile: str) -> list[tuple[Service, type[BaseSettings]]]:
    return [(s, cls) for s in started(profile).values() if (cls := settings_class(s)) is not None]


def test_every_required_variable_comes_from_dotenv() -> None:
    assert required_variables() == set(DOTENV), "DOTENV above lists what .env must set"
    for name in DOTENV:
        with pytest.raises(MissingVariable, match=name):
            load({k: v for k, v in DOTENV.items() if k != name})
    example = (REPO / ".env.example").read_text()
    undocumented = [name for name in DOTENV if not re.search(rf"^#?\s*{name}=", example, re.M)]
    assert not undocumented, f"compose variables missing from .env.example: {undocumented}"


@pytest.mark.parametrize("profile", PROFILES)
def test_each_service_is_given_what_its_settings_need(profile: str) -> None:
    services = our_services(profile)
    assert {s.name for s, _ in services} >= {"backend", "voice_server", "provision"}
    for service, cls in services:
        env = service.environment
        fields = {name.upper() for name in cls.model_fields} | ALIASES
        unknown = sorted(set(env) - fields)
        assert not unknown, f"{service.name} is given variables its settings never read: {unknown}"
        missing = sorted(name for name in required_names(cls) if not env.get(name))
        assert not missing, f"{service.name} ({cls.__name__}) needs {missing}"
        # The values are ones the settings class accepts (no .env file: only what compose passes).
        settings = cls(_env_file=None, **{k.lower(): v for k, v in env.items() if k != "TTS_ENGINES"})
        if isinstance(settings, BackendSettings):
            assert not settings.missing_secrets()
            assert settings.seed_demo is False, "compose must never seed the demo owner"
            assert settings.public_base_url.startswith("https://")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_internal_address_is_a_service_of_the_profile(profile: str) -> None:
    services = started(profile)
    by_name: dict[str, list[Service]] = {}
    for service in services.values():
        for name in service.network_names:
            by_name.setdefault(name, []).append(service)
    duplicated = {name: [s.name for s in owners] for name, owners in by_name.items() if len(owners) > 1}
    assert not duplicated, f"names that resolve to two services in {profile}: {duplicated}"
    checked = 0
    for service in services.values():
        for key, value in service.environment.items():
            for m in HOST_PORT.finditer(value):
                host, port = m.group("host"), int(m.group("port"))
                if host in ("0", "0.0.0.0"):
                    continue
                assert host in by_name, f"{profile}: {service.name}.{key}={value}: no service {host!r} is started"
                target = by_name[host][0]
                assert port in listening_ports(target), \
                    f"{profile}: {service.name}.{key} -> {target.name}:{port}, which listens on {listening_ports(target)}"
                checked += 1
        for dependency in service.spec.get("depends_on", {}):
            assert dependency in services, f"{profile}: {service.name} depends on {dependency}, not started"
    assert checked >= 10
    voice = services["voice_server"].environment
    for key, name in (("RIVA_SERVER", "asr"), ("TTS_URL", "tts"), ("LLM_BASE_URL", "llm")):
        assert name in voice[key] and name in by_name, key


@pytest.mark.parametrize("profile", PROFILES)
def test_the_voice_server_asks_the_profiles_llm_for_the_model_it_serves(profile: str) -> None:
    services = started(profile)
    voice = services["voice_server"].environment
    if profile == "cpu":
        llm = services["llm"].environment
        assert (llm["LLM_MODEL_ALIAS"], llm["LLM_SERVER_API_KEY"]) == (voice["LLM_MODEL"], voice["LLM_API_KEY"])
    else:
        command = services["vllm"].command
        served = command[command.index("--served-model-name") + 1]
        assert (served, command[command.index("--api-key") + 1]) == (voice["LLM_MODEL"], voice["LLM_API_KEY"])


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    return bool(tag) and tag != "latest" and any(ch.isdigit() for ch in tag) and tag.split("-")[0] not in (
        "stable", "mainline")


def test_images_are_pinned() -> None:
    for service in load(DOTENV).values():
        assert service.image, f"{service.name} has no image name"
        assert _pinned(service.image), f"{service.name}: {service.image} is not pinned to a version"
        if "build" in service.spec:
            assert service.image.endswith(f":{VERSION}"), f"{service.name}: tag our images with {VERSION}"
    for dockerfile in (REPO / "Dockerfile", REPO / "frontend" / "Dockerfile"):
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
        assert bases and all(_pinned(b) for b in bases), (dockerfile, bases)


def _nginx_listen_port(frontend: Service) -> int:
    """The port the rendered template listens on: UI_PORT from the container's environment or the image's."""
    assert re.search(r"^\s*listen\s+\$\{UI_PORT\};", (REPO / "frontend" / "nginx.conf").read_text(), re.M)
    image_default = re.search(r"UI_PORT=(\d+)", (REPO / "frontend" / "Dockerfile").read_text()).group(1)  # type: ignore[union-attr]
    return int(frontend.environment.get("UI_PORT", image_default))


def test_only_the_ui_and_the_voice_server_are_published() -> None:
    services = load(DOTENV)
    published = {name: s.spec["ports"] for name, s in services.items() if s.spec.get("ports")}
    assert set(published) == {"frontend", "voice_server"}, published
    host_port, container_port = published["frontend"][0].split(":")
    assert int(container_port) == _nginx_listen_port(services["frontend"])
    assert published["voice_server"] == ["8100:8100"]


def test_the_ui_proxy_template_gets_every_variable_it_uses() -> None:
    template = (REPO / "frontend" / "nginx.conf").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    dockerfile = (REPO / "frontend" / "Dockerfile").read_text()
    env_filter = re.search(r"NGINX_ENVSUBST_FILTER=(\S+)", dockerfile).group(1)  # type: ignore[union-attr]
    assert all(re.search(env_filter, name) for name in used), (used, env_filter)
    frontend = load(DOTENV)["frontend"]
    assert used - {"UI_PORT"} <= set(frontend.environment), used  # UI_PORT: the image's 8080 unless set
    assert re.search(r"^USER\s+(?!root|0\b)\S+", dockerfile, re.M), "nginx runs as an unprivileged user"
    assert "nginx-unprivileged" in dockerfile


def test_services_use_their_own_minio_user_not_the_root_keys() -> None:
    services = load(DOTENV)
    root = services["minio"].environment["MINIO_ROOT_USER"]
    provision = services["provision"].environment
    own: dict[str, tuple[str, str]] = {
        "backend": (provision["S3_BACKEND_ACCESS_KEY"], provision["S3_BACKEND_SECRET_KEY"]),
        "voice_server": (provision["S3_VOICE_ACCESS_KEY"], provision["S3_VOICE_SECRET_KEY"]),
    }
    for name, (access, secret) in own.items():
        env = services[name].environment
        assert (env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"]) == (access, secret), name
        assert access != root
    assert len({secret for _, secret in own.values()}) == 2
    holders = [name for name, s in services.items() if "MINIO_ROOT_PASSWORD" in s.environment]
    assert sorted(holders) == ["minio", "provision"], holders
    assert "@mongo:" in services["backend"].environment["MONGODB_URI"]
    assert re.match(r"mongodb://[^:/]+:[^@]+@", services["backend"].environment["MONGODB_URI"]), "MongoDB with auth"
    assert "MONGO_INITDB_ROOT_PASSWORD" in services["mongo"].environment


def test_no_service_reads_a_dotenv_file_wholesale() -> None:
    """Each service gets only its own variables: an env_file would hand every secret to every container."""
    raw: dict[str, Any] = {name: s.spec for name, s in load(DOTENV).items()}
    assert not [name for name, spec in raw.items() if "env_file" in spec]
    assert "SEED_DEMO" not in Path(COMPOSE_FILE).read_text().replace('SEED_DEMO: "false"', "")
