"""/api/v1/agents: agents and their versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from backend.api.deps import AgentsRead, AgentsWrite, ServicesDep
from backend.api.responses import AUTHENTICATED, CONFLICT, NOT_FOUND
from backend.models.agents import (
    AgentCreate,
    AgentOut,
    AgentSummary,
    AgentTestRunIn,
    AgentTestRunOut,
    AgentTestRunStart,
    AgentUpdate,
    AgentVersionOut,
)
from core.agent_config import AgentConfig

router = APIRouter(prefix="/agents", tags=["agents"], responses=AUTHENTICATED)
AgentId = Annotated[str, Path(min_length=1, max_length=64)]
Version = Annotated[int, Path(ge=1)]


@router.get("")
async def list_agents(principal: AgentsRead, services: ServicesDep) -> list[AgentSummary]:
    return await services.agents.list_agents(principal)


@router.get("/defaults")
async def agent_defaults(principal: AgentsRead) -> AgentConfig:
    """The default configuration, as a starting point for the editor."""
    return AgentConfig()


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(body: AgentCreate, principal: AgentsWrite, services: ServicesDep) -> AgentOut:
    return await services.agents.create(principal, body)


@router.get("/{agent_id}", responses=NOT_FOUND)
async def get_agent(agent_id: AgentId, principal: AgentsRead, services: ServicesDep) -> AgentOut:
    return await services.agents.get(principal, agent_id)


@router.patch("/{agent_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_agent(agent_id: AgentId, body: AgentUpdate, principal: AgentsWrite, services: ServicesDep) -> AgentOut:
    """Any subset of fields; a new `config` becomes a new version."""
    return await services.agents.update(principal, agent_id, body)


@router.put("/{agent_id}", responses={**NOT_FOUND, **CONFLICT})
async def save_agent(agent_id: AgentId, body: AgentUpdate, principal: AgentsWrite, services: ServicesDep) -> AgentOut:
    """Same as PATCH (the editor saves with PUT)."""
    return await services.agents.update(principal, agent_id, body)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **CONFLICT})
async def delete_agent(agent_id: AgentId, principal: AgentsWrite, services: ServicesDep) -> Response:
    """Archives the agent; past calls keep their versions. Refused while a number is linked to it."""
    await services.agents.delete(principal, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{agent_id}/versions", responses=NOT_FOUND)
async def list_agent_versions(agent_id: AgentId, principal: AgentsRead, services: ServicesDep) -> list[AgentVersionOut]:
    return await services.agents.versions(principal, agent_id)


@router.get("/{agent_id}/versions/{version}", responses=NOT_FOUND)
async def get_agent_version(
    agent_id: AgentId, version: Version, principal: AgentsRead, services: ServicesDep
) -> AgentVersionOut:
    return await services.agents.version(principal, agent_id, version)


@router.post("/{agent_id}/versions/{version}/restore", responses={**NOT_FOUND, **CONFLICT})
async def restore_agent_version(
    agent_id: AgentId, version: Version, principal: AgentsWrite, services: ServicesDep
) -> AgentOut:
    """Makes an old version current again, as a new version."""
    return await services.agents.restore(principal, agent_id, version)


@router.post("/{agent_id}/test-runs", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND)
async def record_agent_test_run(
    agent_id: AgentId, body: AgentTestRunIn, principal: AgentsWrite, services: ServicesDep
) -> AgentTestRunOut:
    """Stores an agent test suite's results (`voicectl test-agent --agent-id`) with the version they ran on."""
    return await services.agents.record_test_run(principal, agent_id, body)


@router.get("/{agent_id}/test-runs", responses=NOT_FOUND)
async def list_agent_test_runs(agent_id: AgentId, principal: AgentsRead, services: ServicesDep) -> list[AgentTestRunOut]:
    return await services.agents.test_runs(principal, agent_id)


@router.post("/{agent_id}/test-runs/start", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
async def start_agent_test_run(
    agent_id: AgentId, body: AgentTestRunStart, principal: AgentsWrite, services: ServicesDep
) -> AgentTestRunOut:
    """"Run tests": queues the scenarios (or the agent's saved ones) against its current version; each runs as a
    simulated call in the background. Poll GET .../test-runs/{run_id} for its status and results."""
    return await services.agent_test_runs.start(principal, agent_id, body)


@router.get("/{agent_id}/test-runs/{run_id}", responses=NOT_FOUND)
async def get_agent_test_run(
    agent_id: AgentId, run_id: Annotated[str, Path(min_length=1, max_length=64)], principal: AgentsRead,
    services: ServicesDep,
) -> AgentTestRunOut:
    return await services.agent_test_runs.get(principal, agent_id, run_id)
