"""The one server interceptor: authenticates the key, checks the method's scope,
and maps every error a handler raises to a google.rpc.Status."""

import logging
from collections.abc import Callable
from typing import Any

import grpc

from service import errors
from service.auth.keys import Principal
from service.rpc import context as rpc_context
from service.rpc.status import internal_status_proto, to_grpc_status, to_status_proto

log = logging.getLogger(__name__)

Authenticate = Callable[[list[str]], Principal]


class ServiceInterceptor(grpc.ServerInterceptor):
    """Guards every method that has a required scope; passes the rest (health,
    reflection) through untouched."""

    def __init__(self, method_scopes: dict[str, str], authenticate: Authenticate) -> None:
        self._method_scopes = method_scopes
        self._authenticate = authenticate

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        scope = self._method_scopes.get(method)
        if handler is None or scope is None:
            return handler
        if handler.unary_unary is None:
            raise TypeError(f"{method}: only unary methods are guarded")
        return grpc.unary_unary_rpc_method_handler(
            self.guard(method, scope, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def guard(
        self, method: str, scope: str, behavior: Callable[[Any, grpc.ServicerContext], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        """`behavior` run as `principal`, with its errors turned into statuses."""
        domain = method.lstrip("/").split("/")[0].rsplit(".", 1)[0]  # the proto package

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                principal = self._authenticate(_authorization(context))
                principal.require(scope)
                token = rpc_context.set_principal(principal)
                try:
                    return behavior(request, context)
                finally:
                    rpc_context.reset_principal(token)
            except errors.ServiceError as error:
                status = to_status_proto(error, domain)
            except Exception:
                log.exception("unhandled error in %s", method)
                status = internal_status_proto(domain)
            # Outside the try: abort raises, and must not be caught as a bug.
            abort(context, to_grpc_status(status))

        return guarded


def abort(context: grpc.ServicerContext, status: grpc.Status) -> None:
    """What grpc's own `abort_with_status` does, spelled out so that grpc_testing's
    context (which lacks `abort_with_status`) runs the same path as the server."""
    context.set_trailing_metadata(status.trailing_metadata)  # type: ignore[attr-defined]
    context.abort(status.code, status.details)  # type: ignore[attr-defined]


def _authorization(context: grpc.ServicerContext) -> list[str]:
    return [
        value
        for key, value in context.invocation_metadata()
        if key == "authorization" and isinstance(value, str)
    ]
