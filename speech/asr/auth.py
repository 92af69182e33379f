"""The ASR server's gRPC calls need the platform's service token, as Riva clients send credentials: metadata
`authorization: Bearer <token>` (core/service_auth.py). Only the health service stays open (probes).

A server interceptor, so every method of the Riva service is covered, including ones added later."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from core.service_auth import ServiceTokenError, bearer_token, verify_service_caller

_OPEN_SERVICES = ("/grpc.health.v1.Health/",)
_REFUSAL = "a service token is required (metadata authorization: Bearer <token>)"


class ServiceTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, secret: str) -> None:
        self._secret = secret

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""  # type: ignore[attr-defined]
        if handler is None or method.startswith(_OPEN_SERVICES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())  # type: ignore[attr-defined]
        try:
            verify_service_caller(self._secret, bearer_token(str(metadata.get("authorization", ""))))
        except ServiceTokenError:
            return _refusing(handler)
        return handler


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def refuse(_: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)

    kinds = {(False, False): grpc.unary_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler,
             (True, False): grpc.stream_unary_rpc_method_handler,
             (True, True): grpc.stream_stream_rpc_method_handler}
    make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return make(refuse, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
