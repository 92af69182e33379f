"""One error shape for every failure: ``{"error": {"code", "message", "details": [{"path", "message", "type"}], "request_id"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    path: str = Field(description="Dotted location of the offending input, e.g. `body.config.llm.temperature`.")
    message: str
    type: str = "invalid"


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["Agent not found"])
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "body.config.llm.temperature: Input should be less than or equal to 2",
                        "details": [
                            {
                                "path": "body.config.llm.temperature",
                                "message": "Input should be less than or equal to 2",
                                "type": "less_than_equal",
                            }
                        ],
                        "request_id": "5f1c0b8e4a9d4f0e",
                    }
                }
            ]
        }
    }


class ApiError(Exception):
    """Raised by services; rendered in the one error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str = "You do not have permission to do this") -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


def unauthorized(message: str = "Authentication required", code: str = "unauthorized") -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def bad_request(message: str, path: str | None = None, code: str = "bad_request") -> ApiError:
    details = [ErrorDetail(path=path, message=message)] if path else []
    return ApiError(400, code, message, details)


def _loc_to_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def error_payload(request: Request, code: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, Any]:
    body = ErrorBody(code=code, message=message, details=details or [], request_id=request_id_of(request))
    return {"error": body.model_dump()}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 409: "conflict", 410: "gone", 413: "payload_too_large", 415: "unsupported_media_type",
    416: "range_not_satisfiable", 422: "validation_error", 429: "rate_limited", 500: "internal_error", 503: "unavailable",
}

_UNPARSEABLE_BODY = "There was an error parsing the body"  # fastapi.routing's message


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_payload(request, exc.code, exc.message, exc.details), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            loc = err.get("loc", ())
            details.append(ErrorDetail(path=_loc_to_path(loc), message=str(err.get("msg", "invalid")),
                                       type=str(err.get("type", "invalid"))))
        summary = "; ".join(f"{d.path}: {d.message}" for d in details[:5]) or "Invalid request"
        return JSONResponse(error_payload(request, "validation_error", summary, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY:
            # FastAPI's 400 for a body it cannot even decode (not UTF-8 JSON): the same 422 as malformed JSON.
            detail = ErrorDetail(path="body", message="The body is not valid UTF-8 JSON", type="json_invalid")
            return JSONResponse(error_payload(request, "validation_error", f"body: {detail.message}", [detail]),
                                status_code=422)
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = getattr(exc, "headers", None)
        return JSONResponse(error_payload(request, code, message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(ServerSelectionTimeoutError)
    @app.exception_handler(ConnectionFailure)
    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            error_payload(request, "unavailable", "The database is unavailable; retry shortly"),
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_payload(request, "internal_error", "Internal server error"), status_code=500)
