"""Error responses documented on every route (they all share backend.errors.ErrorResponse)."""

from __future__ import annotations

from typing import Any

from backend.errors import ErrorResponse


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


AUTHENTICATED: dict[int | str, dict[str, Any]] = {
    # Checks the schema cannot state (found by fuzzing: they were returned but undocumented).
    400: _error("A bad cursor, a date range too long, an unreadable upload"),
    401: _error("Missing, expired or revoked credentials"),
    403: _error("The caller's role does not allow this"),
    422: _error("Invalid input; `details` lists each field path"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("Not found in the caller's organisation")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("Conflicts with the current state")}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {429: _error("Too many attempts; see Retry-After")}
PUBLIC: dict[int | str, dict[str, Any]] = {422: _error("Invalid input; `details` lists each field path")}
