"""deploy/k8s without a cluster: every document parses, and what Kubernetes would do with it matches what the services
expect (ports from their settings, probes on the endpoints they serve, drain time vs grace period, secrets only by
reference, the GPU engine on GPU nodes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from backend.config import BackendSettings
from speech.asr.config import AsrSettings
from speech.llm.config import LlmServerSettings
from speech.tts.config import TtsSettings
from voice_server.config import VoiceServerSettings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SETTINGS: list[type[BaseSettings]] = [BackendSettings, VoiceServerSettings, AsrSettings, TtsSettings, LlmServerSettings]
SENSITIVE = ("SECRET", "KEY", "PASSWORD", "TOKEN", "MONGODB_URI")


def _load() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


DOCS = _load()


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name)


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def default(settings: type[BaseSettings], field: str) -> Any:
    return settings.model_fields[field].default


def port_named(c: dict[str, Any], name: str) -> int:
    return int(next(p["containerPort"] for p in c["ports"] if p["name"] == name))


def config_map() -> dict[str, str]:
    data: dict[str, str] = find("ConfigMap", "voiceagent-config")["data"]
    return data


def test_every_document_is_a_known_kind_with_a_name() -> None:
    kinds = {d["kind"] for d in DOCS}
    assert kinds == {"ConfigMap", "Namespace", "Service", "Deployment", "StatefulSet", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"}, kinds
    assert all(d.get("apiVersion") and d["metadata"].get("name") for d in DOCS)
    assert not [d for d in DOCS if d["kind"] == "Secret"], "secrets are created outside the repo"


def test_config_keys_are_settings_fields() -> None:
    fields = {name.upper() for s in SETTINGS for name in s.model_fields}
    fields |= {"TTS_ENGINES"}  # TtsSettings.tts_engines accepts TTS_ENGINES or TTS_ENGINE
    unknown = [key for key in config_map() if key not in fields]
    assert not unknown, f"ConfigMap keys no service reads: {unknown}"
    # Values the settings classes would accept.
    VoiceServerSettings.model_validate({k.lower(): v for k, v in config_map().items()
                                        if k.lower() in VoiceServerSettings.model_fields})


@pytest.mark.parametrize("kind,name", [("Deployment", "backend"), ("StatefulSet", "voice-server"),
                                       ("Deployment", "asr"), ("Deployment", "tts"), ("Deployment", "tts-xtts"),
                                       ("Deployment", "llm")])
def test_secrets_only_by_reference(kind: str, name: str) -> None:
    c = container(find(kind, name))
    for env in c.get("env", []):
        if any(word in env["name"] for word in SENSITIVE):
            assert "value" not in env and "secretKeyRef" in env["valueFrom"], env
    assert not [k for k in config_map() if any(word in k for word in SENSITIVE)]


def test_ports_match_the_services_settings() -> None:
    def command_port(c: dict[str, Any]) -> int:
        cmd = c["command"]
        return int(cmd[cmd.index("--port") + 1])

    backend = container(find("Deployment", "backend"))
    assert command_port(backend) == port_named(backend, "http") == 8000
    assert find("Service", "backend")["spec"]["ports"][0]["port"] == 8000
    assert config_map()["BACKEND_URL"].endswith(":8000")
    voice = container(find("StatefulSet", "voice-server"))
    assert command_port(voice) == port_named(voice, "http") == 8100
    asr = container(find("Deployment", "asr"))
    assert port_named(asr, "grpc") == default(AsrSettings, "asr_port")
    assert port_named(asr, "health") == default(AsrSettings, "asr_health_port")
    assert config_map()["RIVA_SERVER"] == f"asr:{default(AsrSettings, 'asr_port')}"
    for name in ("tts", "tts-xtts"):
        assert port_named(container(find("Deployment", name)), "http") == default(TtsSettings, "tts_port")
    assert config_map()["TTS_URL"] == f"http://tts:{default(TtsSettings, 'tts_port')}"
    assert port_named(container(find("Deployment", "llm")), "http") == default(LlmServerSettings, "llm_port")
    assert config_map()["LLM_BASE_URL"] == f"http://llm:{default(LlmServerSettings, 'llm_port')}/v1"
    for service in (d for d in DOCS if d["kind"] == "Service" and d["spec"].get("selector")):
        selected = [d for d in DOCS if d["kind"] in ("Deployment", "StatefulSet")
                    and d["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()]
        assert len(selected) == 1, service["metadata"]["name"]
        names = {p["name"] for p in container(selected[0])["ports"]}
        assert all(p["targetPort"] in names for p in service["spec"]["ports"]), service["metadata"]["name"]


def test_voice_server_probes_and_graceful_drain() -> None:
    workload = find("StatefulSet", "voice-server")
    c = container(workload)
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain_s = float(config_map()["VOICE_DRAIN_MAX_S"])
    grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # Kubernetes counts preStop inside the grace period; SIGKILL must not come before the drain deadline.
    assert grace >= drain_s + float(pre_stop[1]) + 10, (grace, drain_s)
    assert {"name": "VOICE_SERVER_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in c["env"]
    lease, beat = float(config_map()["VOICE_CALL_LEASE_S"]), float(config_map()["VOICE_HEARTBEAT_INTERVAL_S"])
    assert lease >= 3 * beat, "a lease must survive a couple of missed beats"
    hpa = find("HorizontalPodAutoscaler", "voice-server")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "voice-server"}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = find("PodDisruptionBudget", "voice-server")
    assert pdb["spec"]["selector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]


def test_backend_probes_and_budget() -> None:
    c = container(find("Deployment", "backend"))
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert config_map()["DIALER_ENABLED"] == "true"
    assert find("PodDisruptionBudget", "backend")["spec"]["minAvailable"] >= 1
    assert find("Deployment", "backend")["spec"]["replicas"] >= 2


def test_xtts_runs_on_gpu_nodes() -> None:
    spec = find("Deployment", "tts-xtts")["spec"]["template"]["spec"]
    assert spec["nodeSelector"]
    assert container(find("Deployment", "tts-xtts"))["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in str(container(find("Deployment", "tts"))["resources"])
