"""The one server interceptor: authenticates the key, checks the method's scope,
and turns every error a handler raises into a google.rpc.Status."""

import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from service import errors
from service.auth.keys import AUTH_DOMAIN, Principal
from service.db.failures import retrying
from service.idempotency import rules as idempotency_rules
from service.idempotency.store import Idempotency
from service.observability import CallRecord, Observability
from service.rpc import context as rpc_context
from service.rpc.status import status_for, to_grpc_status

Authenticate = Callable[[list[str]], Principal]
Behavior = Callable[[Any, grpc.ServicerContext], Any]
Serialize = Callable[[Any], bytes]

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}

# Served to anyone: health checks and reflection carry no tenant data.
PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the guard can answer
    INVALID_ARGUMENT with details instead of gRPC's bare INTERNAL."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class ServiceInterceptor(grpc.ServerInterceptor):
    """Guards every method that declares a scope; lets health and reflection through;
    refuses any other method it finds (a service registered without a scope).

    A mutating method called with an `idempotency-key` runs at most once per key: see
    service/idempotency/store.py.
    """

    def __init__(
        self,
        method_scopes: dict[str, str],
        authenticate: Authenticate,
        idempotency: Idempotency | None = None,
        mutating: frozenset[str] = frozenset(),
        observability: Observability | None = None,
    ) -> None:
        self._method_scopes = method_scopes
        self._authenticate = authenticate
        self._idempotency = idempotency
        self._mutating = mutating
        self._observability = observability
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(PUBLIC_SERVICES):
            return handler
        # A method's registered handler never changes: wrap it once, not on every call.
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        scope = self._method_scopes.get(method)
        if scope is None or handler.unary_unary is None:
            return grpc.unary_unary_rpc_method_handler(_refuse(method))
        serialize = handler.response_serializer or (lambda message: message)
        return grpc.unary_unary_rpc_method_handler(
            self.guard(method, scope, handler.unary_unary, serialize),
            request_deserializer=_tolerant(handler.request_deserializer),
            # A replayed response is sent as the very bytes first sent.
            response_serializer=lambda r: r if isinstance(r, bytes) else serialize(r),
        )

    def guard(
        self,
        method: str,
        scope: str,
        behavior: Behavior,
        serialize: Serialize = lambda message: message.SerializeToString(),
    ) -> Behavior:
        """`behavior` run as the caller's principal, at most once per idempotency key,
        with its errors turned into statuses."""
        domain = package_of(method)
        mutating = self._idempotency is not None and method in self._mutating

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            seen: dict[str, Any] = {}  # who called and how, for the log line
            code = "OK"
            try:
                try:
                    principal = self._authenticate(_authorization(context))
                    seen.update(entity=principal.tenant.entity_id, key_id=principal.key_id)
                    principal.require(scope)
                    if isinstance(request, _Undecodable):
                        raise _bad_message(request.error)
                    key = _idempotency_key(context) if mutating else None
                    token = rpc_context.set_principal(principal)
                    try:
                        if key is None:
                            return retrying(lambda: behavior(request, context))
                        seen["idempotency_key"] = key
                        assert self._idempotency is not None
                        idempotency = self._idempotency
                        outcome = retrying(
                            lambda: idempotency.run(
                                principal,
                                method,
                                key,
                                request.SerializeToString(deterministic=True),
                                lambda: serialize(behavior(request, context)),
                            )
                        )
                        seen["replayed"] = outcome.replayed
                        if outcome.replayed and context.is_active():
                            context.send_initial_metadata(
                                ((idempotency_rules.REPLAYED_HEADER, "true"),)
                            )
                        return outcome.response
                    finally:
                        rpc_context.reset_principal(token)
                except Exception as error:
                    if not context.is_active():  # the caller is gone: nobody to answer
                        code = "CANCELLED"
                        return None
                    status = status_for(error, domain, method)
                    code = _CODE_NAMES.get(status.code, "UNKNOWN")
                # Outside the inner try: abort raises, and must not be taken for a bug.
                abort(context, to_grpc_status(status))
            finally:
                if self._observability is not None:
                    elapsed = time.perf_counter() - started
                    record = CallRecord(method, code, elapsed, context.peer(), **seen)
                    self._observability.call(record)

        return guarded


def package_of(method: str) -> str:
    """ "/arcus.counters.v1.CounterService/GetCounter" -> "arcus.counters.v1"."""
    return method.lstrip("/").split("/")[0].rsplit(".", 1)[0]


def abort(context: grpc.ServicerContext, status: grpc.Status) -> None:
    """What grpc's own `abort_with_status` does, spelled out so that grpc_testing's
    context (which lacks `abort_with_status`) runs the same path as the server."""
    context.set_trailing_metadata(status.trailing_metadata)
    context.abort(status.code, status.details)


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except (DecodeError, ValueError) as error:
            return _Undecodable(error)

    return deserialize


def _bad_message(error: Exception) -> errors.InvalidArgument:
    violations = errors.Violations()
    violations.add("", f"the request message does not parse: {error}", "MESSAGE_MALFORMED")
    return errors.InvalidArgument(violations.items)


def _refuse(method: str) -> Behavior:
    def refuse(request: Any, context: grpc.ServicerContext) -> None:
        error = errors.PermissionDenied(
            "METHOD_NOT_GUARDED",
            f"{method} declares no required scope, so no key may call it",
            domain=AUTH_DOMAIN,
        )
        abort(context, to_grpc_status(status_for(error, package_of(method), method)))

    return refuse


def _metadata(context: grpc.ServicerContext, name: str) -> list[str]:
    return [
        value
        for key, value in context.invocation_metadata()
        if key == name and isinstance(value, str)
    ]


def _authorization(context: grpc.ServicerContext) -> list[str]:
    return _metadata(context, "authorization")


def _idempotency_key(context: grpc.ServicerContext) -> str | None:
    if any(key == idempotency_rules.HEADER + "-bin" for key, _ in context.invocation_metadata()):
        violations = errors.Violations()
        violations.add(
            idempotency_rules.HEADER, "must be sent as text, not -bin", "IDEMPOTENCY_KEY_INVALID"
        )
        violations.raise_if_any()
    return idempotency_rules.check_key(_metadata(context, idempotency_rules.HEADER))
