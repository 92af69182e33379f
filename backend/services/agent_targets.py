"""Where an agent may send requests, checked when it is saved: its webhook tools must not name internal addresses,
and its own AI endpoints (instead of the platform's) are allowed only when the organisation turned them on.

The voice server checks again at call time (core/egress.py resolves names and pins the address); this catches the
obvious cases early with a clear 422 naming the field."""

from __future__ import annotations

from backend.errors import ErrorDetail
from core.agent_config import AgentConfig, EndpointOptions
from core.egress import EgressPolicy

CUSTOM_ENDPOINTS_OFF = ("custom AI endpoints are turned off for this organisation "
                        "(organisation setting allow_custom_endpoints); leave base_url empty for the platform's")


def _endpoints(config: AgentConfig) -> list[tuple[str, EndpointOptions]]:
    """(path, options) for every endpoint of the agent, fallbacks included."""
    found = []
    for service in ("stt", "llm", "tts"):
        section = getattr(config, service)
        found.append((f"{service}.endpoint", section.endpoint))
        found += [(f"{service}.fallbacks[{i}]", fb) for i, fb in enumerate(section.fallbacks)]
    return found


def target_problems(config: AgentConfig, policy: EgressPolicy, custom_endpoints_allowed: bool,
                    prefix: str = "body.config") -> list[ErrorDetail]:
    problems = []
    for i, tool in enumerate(config.tools):
        why = policy.static_refusal(str(tool.url))
        if why is not None:
            problems.append(ErrorDetail(path=f"{prefix}.tools[{i}].url", type="value_error",
                                        message=f"internal addresses are not allowed ({why})"))
    hook = config.context_webhook
    why = policy.static_refusal(str(hook.url)) if hook is not None else None
    if why is not None:
        problems.append(ErrorDetail(path=f"{prefix}.context_webhook.url", type="value_error",
                                    message=f"internal addresses are not allowed ({why})"))
    for path, options in _endpoints(config):
        if not options.base_url:
            continue
        if not custom_endpoints_allowed:
            problems.append(ErrorDetail(path=f"{prefix}.{path}.base_url", type="value_error",
                                        message=CUSTOM_ENDPOINTS_OFF))
            continue
        url = options.base_url if "://" in options.base_url else f"http://{options.base_url}"  # Riva: host:port
        why = policy.static_refusal(url)
        if why is not None:
            problems.append(ErrorDetail(path=f"{prefix}.{path}.base_url", type="value_error",
                                        message=f"internal addresses are not allowed ({why})"))
    return problems


def platform_endpoints_only(config: AgentConfig) -> AgentConfig:
    """The agent with every custom endpoint removed: primaries fall back to the platform's, custom fallbacks go."""
    changes = {}
    for service in ("stt", "llm", "tts"):
        section = getattr(config, service)
        changes[service] = section.model_copy(update={
            "endpoint": section.endpoint.model_copy(update={"base_url": None, "api_key_ref": None}),
            "fallbacks": [fb for fb in section.fallbacks if not fb.base_url],
        })
    return config.model_copy(update=changes)
