"""deploy/k8s without a cluster: every document is valid against the Kubernetes API schemas (kubernetes-validate ships
them offline; strict: an unknown field fails), and what Kubernetes would do with it matches what the services expect
(ports from their settings, probes on the endpoints they serve, drain time vs grace period, secrets only by
reference, each service its own MinIO user, no demo owner, pinned images, the GPU engine on GPU nodes), and the
NetworkPolicies let only the voice servers and the backend reach the speech servers and the databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_model import required_names
from pydantic_settings import BaseSettings

from backend.config import BackendSettings
from provision.config import ProvisionSettings
from speech.asr.config import AsrSettings
from speech.embed.config import EmbedServerSettings
from speech.llm.config import LlmServerSettings
from speech.tts.config import TtsSettings
from voice_server.config import VoiceServerSettings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SETTINGS: list[type[BaseSettings]] = [BackendSettings, VoiceServerSettings, AsrSettings, TtsSettings, LlmServerSettings,
                                      ProvisionSettings, EmbedServerSettings]
# The oldest Kubernetes release these manifests are written for, and the newest schemas the package ships.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
WORKLOADS = [("Deployment", "backend"), ("StatefulSet", "voice-server"), ("Deployment", "asr"),
             ("Deployment", "tts"), ("Deployment", "tts-xtts"), ("Deployment", "llm"), ("Deployment", "frontend"),
             ("Job", "provision"), ("Deployment", "embed")]
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
    """The workload's one container (Deployment, StatefulSet or Job)."""
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
                     "PodDisruptionBudget", "Job", "NetworkPolicy"}, kinds
    assert all(d.get("apiVersion") and d["metadata"].get("name") for d in DOCS)
    assert not [d for d in DOCS if d["kind"] == "Secret"], "secrets are created outside the repo"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_is_valid_against_the_kubernetes_api_schemas(version: str) -> None:
    for doc in DOCS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {exc}") from None


def test_the_schema_check_catches_a_misspelt_field() -> None:
    broken = yaml.safe_load(yaml.safe_dump(find("Deployment", "backend")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = broken["spec"]["template"]["spec"][
        "containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("kind,name", WORKLOADS)
def test_images_are_pinned(kind: str, name: str) -> None:
    image = container(find(kind, name))["image"]
    tag = image.rsplit(":", 1)[1] if ":" in image else ""
    assert "@sha256:" in image or (tag and tag != "latest" and any(ch.isdigit() for ch in tag)), image


def test_no_demo_owner_and_https_public_urls() -> None:
    config = config_map()
    assert config["SEED_DEMO"] == "false"
    assert BackendSettings(_env_file=None, seed_demo=config["SEED_DEMO"]).seed_demo is False  # type: ignore[call-arg]
    assert config["PUBLIC_BASE_URL"].startswith("https://") and config["CORS_ORIGINS"] == config["PUBLIC_BASE_URL"]


def _secret_keys(kind: str, name: str) -> dict[str, str]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container(find(kind, name)).get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


@pytest.mark.parametrize("kind,name,settings", [("Deployment", "backend", BackendSettings),
                                                ("StatefulSet", "voice-server", VoiceServerSettings),
                                                ("Job", "provision", ProvisionSettings)])
def test_each_service_gets_the_secrets_its_settings_need(kind: str, name: str, settings: type[BaseSettings]) -> None:
    c = container(find(kind, name))
    given = set(_secret_keys(kind, name)) | {e["name"] for e in c.get("env", [])}
    if c.get("envFrom"):
        given |= set(config_map())
    missing = required_names(settings) - given
    assert not missing, f"{name} needs {sorted(missing)}"


def test_each_service_has_its_own_minio_user() -> None:
    backend, voice = _secret_keys("Deployment", "backend"), _secret_keys("StatefulSet", "voice-server")
    assert (backend["S3_ACCESS_KEY"], backend["S3_SECRET_KEY"]) == ("S3_BACKEND_ACCESS_KEY", "S3_BACKEND_SECRET_KEY")
    assert (voice["S3_ACCESS_KEY"], voice["S3_SECRET_KEY"]) == ("S3_VOICE_ACCESS_KEY", "S3_VOICE_SECRET_KEY")
    provision = _secret_keys("Job", "provision")
    assert {"S3_BACKEND_SECRET_KEY", "S3_VOICE_SECRET_KEY", "MINIO_ROOT_PASSWORD"} <= set(provision)
    holders = [name for kind, name in WORKLOADS if "MINIO_ROOT_PASSWORD" in _secret_keys(kind, name)]
    assert holders == ["provision"], "only the provision Job holds MinIO's root keys"


def test_config_keys_are_settings_fields() -> None:
    fields = {name.upper() for s in SETTINGS for name in s.model_fields}
    fields |= {"TTS_ENGINES"}  # TtsSettings.tts_engines accepts TTS_ENGINES or TTS_ENGINE
    unknown = [key for key in config_map() if key not in fields]
    assert not unknown, f"ConfigMap keys no service reads: {unknown}"
    # Values the settings classes would accept.
    VoiceServerSettings.model_validate({k.lower(): v for k, v in config_map().items()
                                        if k.lower() in VoiceServerSettings.model_fields})


@pytest.mark.parametrize("kind,name", WORKLOADS)
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


# ---- NetworkPolicies, evaluated as Kubernetes would (both ends must allow a connection) --------------------------
def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value, present = labels.get(expr["key"]), expr["key"] in labels
        ok = {"In": present and value in expr.get("values", []), "NotIn": value not in expr.get("values", []),
              "Exists": present, "DoesNotExist": not present}[expr["operator"]]
        if not ok:
            return False
    return True


def _policies(direction: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [d["spec"] for d in DOCS if d["kind"] == "NetworkPolicy" and direction in d["spec"]["policyTypes"]
            and _selects(d["spec"]["podSelector"], labels)]


def _rule_allows(rule: dict[str, Any], peer_key: str, peer: dict[str, str] | None, port: int) -> bool:
    """`peer`: the other pod's labels in this namespace, or None for an address outside the cluster."""
    if "ports" in rule and not any(p.get("port") == port for p in rule["ports"]):
        return False
    peers = rule.get(peer_key)
    if not peers:
        return True  # no peers listed: any source / destination
    return peer is not None and any("namespaceSelector" not in p and "podSelector" in p
                                    and _selects(p["podSelector"], peer) for p in peers)


def _allowed(src: dict[str, str] | None, dst: dict[str, str] | None, port: int) -> bool:
    if src is not None:
        rules = [r for p in _policies("Egress", src) for r in p.get("egress", [])]
        if not any(_rule_allows(r, "to", dst, port) for r in rules):
            return False
    if dst is not None:
        rules = [r for p in _policies("Ingress", dst) for r in p.get("ingress", [])]
        if not any(_rule_allows(r, "from", src, port) for r in rules):
            return False
    return True


def _pods() -> dict[str, dict[str, str]]:
    return {name: find(kind, name)["spec"]["template"]["metadata"]["labels"] for kind, name in WORKLOADS}


def test_every_pod_is_under_a_default_deny() -> None:
    for name, labels in _pods().items():
        assert _policies("Ingress", labels) and _policies("Egress", labels), name


@pytest.mark.parametrize("server,port", [("asr", 50051), ("tts", 8200), ("tts-xtts", 8200), ("llm", 8300)])
def test_only_the_voice_server_and_backend_reach_the_speech_servers(server: str, port: int) -> None:
    pods = _pods()
    callers = {name for name, labels in pods.items() if name != server and _allowed(labels, pods[server], port)}
    assert callers == {"voice-server", "backend"}, callers
    assert not _allowed(None, pods[server], port), "nothing outside the cluster reaches a speech server"


@pytest.mark.parametrize("port,expected", [(27017, {"backend", "voice-server"}),
                                           (9000, {"backend", "voice-server", "provision"})])
def test_only_the_voice_server_and_backend_reach_the_databases(port: int, expected: set[str]) -> None:
    """MongoDB and MinIO are outside the cluster (external-services.yaml): only pods allowed to leave it reach them
    (and the provision Job, MinIO's API only)."""
    reach = {name for name, labels in _pods().items() if _allowed(labels, None, port)}
    assert reach == expected, reach


def test_the_backend_is_reached_only_through_the_ui_proxy_and_by_voice_servers() -> None:
    pods = _pods()
    callers = {name for name, labels in pods.items() if name != "backend" and _allowed(labels, pods["backend"], 8000)}
    assert callers == {"frontend", "voice-server"}, callers
    assert not _allowed(None, pods["backend"], 8000)
    assert _allowed(None, pods["frontend"], 8080) and _allowed(None, pods["voice-server"], 8100)
    assert _allowed(pods["frontend"], pods["voice-server"], 8100), "browser test calls through the UI's proxy"
