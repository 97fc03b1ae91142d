"""The one server interceptor: authenticates the key, checks the method's scope,
and turns every error a handler raises into a google.rpc.Status.

The server is grpc.aio's: it reads a request whole before a handler runs, so a caller that
sends headers and then nothing (or a trickle) holds no thread. The handlers, and this
guard, are synchronous code run in a thread pool; `handle` decides a call's whole reply
(its response, initial metadata, or the status to abort with) and the async adapter sends
it. `guard` adapts the same code to a synchronous context (grpcio-testing).
"""

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2

from service import errors
from service.auth.keys import AUTH_DOMAIN, Principal
from service.db import watchdog
from service.db.coalesce import Coalescer
from service.idempotency import rules as idempotency_rules
from service.idempotency.store import Idempotency
from service.observability import CallRecord, Observability
from service.rpc import context as rpc_context
from service.rpc.status import status_for, to_grpc_status
from service.tracing import Tracing
from service.tracing import installed as installed_tracing

Authenticate = Callable[[list[str]], Principal]
Behavior = Callable[[Any, Any], Any]
Serialize = Callable[[Any], bytes]
Metadata = tuple[tuple[str, str | bytes], ...]

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


@dataclass(frozen=True)
class Call:
    """What the guard needs to know of an RPC, whatever the server type."""

    metadata: Metadata
    # Read on the event loop when the call starts: a grpc.aio context must not be touched
    # from a worker thread once its call has ended (its peer() then reads freed memory).
    peer: str
    deadline: float | None  # time.monotonic() by which the caller wants its answer
    gone: Callable[[], bool]  # the caller cancelled, or its deadline passed


@dataclass(frozen=True)
class Reply:
    """A call's outcome: a response (a message, or the bytes of a replay), with initial
    metadata; or the status to abort with."""

    response: Any = None
    initial_metadata: Metadata = ()
    status: grpc.Status | None = None


Handle = Callable[[Any, Call], Reply]


def deadline_after(remaining: float | None) -> float | None:
    return None if remaining is None else time.monotonic() + remaining


class ServiceInterceptor(grpc.aio.ServerInterceptor):
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
        executor: Executor | None = None,
        tracing: Tracing | None = None,
        coalescing: "Coalescing | None" = None,
    ) -> None:
        self._method_scopes = method_scopes
        self._authenticate = authenticate
        self._idempotency = idempotency
        self._mutating = mutating
        self._observability = observability
        self._executor = executor  # runs the handlers; None: the loop's default
        # A span per call (service/tracing.py): this one, else what `tracing.configure`
        # installed when the server was built (serve's OTEL_* variables, or a test's).
        self._tracing = tracing if tracing is not None else installed_tracing()
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        # Calls of these methods that would queue on one hot row run together (db/coalesce.py).
        self._coalescing = coalescing

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
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
            return grpc.unary_unary_rpc_method_handler(_refused_async(method))
        serialize = handler.response_serializer or (lambda message: message)
        handle = self.handle(method, scope, handler.unary_unary, serialize)

        def answer(request: Any, call: Call) -> Reply:
            """The reply, its response serialized here in the worker thread: the event
            loop only sends bytes."""
            reply = handle(request, call)
            if reply.status is None and not isinstance(reply.response, bytes):
                reply = Reply(serialize(reply.response), reply.initial_metadata)
            return reply

        executor = self._executor

        async def served(request: Any, context: grpc.aio.ServicerContext) -> bytes | None:
            gone = threading.Event()
            call = Call(
                tuple(context.invocation_metadata() or ()),
                context.peer(),
                deadline_after(context.time_remaining()),
                gone.is_set,
            )
            loop = asyncio.get_running_loop()
            replied: asyncio.Future[Reply] = loop.create_future()

            def run() -> None:
                """In a worker thread: one wake-up of the loop with the reply (where
                run_in_executor chains a second future to the executor's, each with its
                callbacks: the loop's work per call is what bounds the service)."""
                try:
                    reply = answer(request, call)
                except BaseException as error:
                    loop.call_soon_threadsafe(_settle, replied, None, error)
                else:
                    loop.call_soon_threadsafe(_settle, replied, reply, None)

            work: concurrent.futures.Future[None] | asyncio.Future[None] = (
                loop.run_in_executor(None, run) if executor is None else executor.submit(run)
            )
            try:
                reply = await replied
            except asyncio.CancelledError:  # the caller left; a handler that started runs on
                gone.set()
                work.cancel()
                raise
            if reply.initial_metadata:
                await context.send_initial_metadata(reply.initial_metadata)
            if reply.status is not None:
                status = reply.status
                await context.abort(
                    status.code, status.details, tuple(status.trailing_metadata or ())
                )
            return reply.response

        return grpc.unary_unary_rpc_method_handler(
            served,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=None,  # bytes already
        )

    def guard(
        self,
        method: str,
        scope: str,
        behavior: Behavior,
        serialize: Serialize = lambda message: message.SerializeToString(),
    ) -> Behavior:
        """`handle` for a synchronous servicer context (grpcio-testing)."""
        handle = self.handle(method, scope, behavior, serialize)

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            call = Call(
                tuple(context.invocation_metadata()),
                _peer(context),
                deadline_after(context.time_remaining()),
                lambda: not context.is_active(),
            )
            reply = handle(request, call)
            if reply.initial_metadata:
                context.send_initial_metadata(reply.initial_metadata)
            if reply.status is not None:
                abort(context, reply.status)
            return reply.response

        return guarded

    def handle(
        self,
        method: str,
        scope: str,
        behavior: Behavior,
        serialize: Serialize = lambda message: message.SerializeToString(),
    ) -> Handle:
        """`behavior` run as the caller's principal, at most once per idempotency key,
        its database work bounded by the caller's deadline, its errors turned into
        statuses. (Transient conflicts are retried by the unit of work that meets them.)"""
        domain = package_of(method)
        mutating = self._idempotency is not None and method in self._mutating
        tracing = self._tracing
        coalescing = self._coalescing
        group_of = None if coalescing is None else coalescing.groups.get(method)

        def handled(request: Any, call: Call) -> Reply:
            started = time.perf_counter()
            # Current in this thread, so the SQL that auth, idempotency and the handler run
            # here nests under it.
            span = None if tracing is None else tracing.rpc(method, call.metadata, call.peer)
            seen: dict[str, Any] = {}  # who called and how, for the log line
            mode = ""
            code = "OK"
            try:
                try:
                    principal = self._authenticate(_metadata(call, "authorization"))
                    seen.update(entity=principal.tenant.entity_id, key_id=principal.key_id)
                    mode = principal.tenant.mode
                    principal.require(scope)
                    if isinstance(request, _Undecodable):
                        raise _bad_message(request.error)
                    key = _idempotency_key(call) if mutating else None
                    if getattr(request, "validate_only", False):
                        key = None  # AIP-163: nothing is written, not even the record
                    if key is not None:
                        principal = replace(principal, idempotency_key=key)
                    token = rpc_context.set_principal(principal)
                    try:
                        group = None if group_of is None else group_of(request, principal)
                        with watchdog.bounded(call.deadline):
                            if key is None:
                                effect = partial(behavior, request, None)
                            else:
                                seen["idempotency_key"] = key
                                assert self._idempotency is not None
                                effect = partial(
                                    self._idempotency.run,
                                    principal,
                                    method,
                                    key,
                                    request.SerializeToString(deterministic=True),
                                    lambda: serialize(behavior(request, None)),
                                )
                            if group is not None:
                                assert coalescing is not None
                                run = coalescing.coalescer.run
                                outcome = run(group, key, call.deadline, effect)
                            else:
                                outcome = effect()
                            if key is None:
                                return Reply(outcome)
                        seen["replayed"] = outcome.replayed
                        replayed = ((idempotency_rules.REPLAYED_HEADER, "true"),)
                        return Reply(outcome.response, replayed if outcome.replayed else ())
                    finally:
                        rpc_context.reset_principal(token)
                except Exception as error:
                    if call.gone():  # the caller left: nobody to answer, nothing to log
                        code = "CANCELLED"
                        return Reply(status=_CANCELLED)
                    status = status_for(error, domain, method)
                    code = _CODE_NAMES.get(status.code, "UNKNOWN")
                    return Reply(status=to_grpc_status(status))
            finally:
                if self._observability is not None:
                    elapsed = time.perf_counter() - started
                    record = CallRecord(method, code, elapsed, call.peer, **seen)
                    self._observability.call(record)
                if span is not None:
                    span.end(grpc.StatusCode[code], _span_attributes(seen, mode))

        return handled


@dataclass(frozen=True)
class Coalescing:
    """Which methods' calls run together, and by what key (None: that call alone)."""

    coalescer: Coalescer
    groups: dict[str, Callable[[Any, Principal], Hashable | None]]


def _span_attributes(seen: dict[str, Any], mode: str) -> dict[str, str | int | bool]:
    """What a call's span says of who called and how: what its log line says (the key's
    id, never the key nor any part of it), and the key's mode."""
    attributes: dict[str, str | int | bool] = {}
    if "entity" in seen:
        attributes.update({"arcus.entity": seen["entity"], "arcus.mode": mode})
        attributes["arcus.key_id"] = seen["key_id"]
    if "idempotency_key" in seen:
        attributes["arcus.idempotency_key"] = seen["idempotency_key"]
        attributes["arcus.replayed"] = seen.get("replayed", False)
    return attributes


# Sent to nobody: the caller has left (the status only ends the call on our side).
_CANCELLED = to_grpc_status(
    status_pb2.Status(code=code_pb2.CANCELLED, message="the caller cancelled or timed out")
)


def _settle(
    future: "asyncio.Future[Reply]", reply: Reply | None, error: BaseException | None
) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(reply)  # type: ignore[arg-type]


def _peer(context: grpc.ServicerContext) -> str:
    try:
        return context.peer()
    except NotImplementedError:  # grpcio-testing's context has no peer
        return ""


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


def _refusal(method: str) -> grpc.Status:
    error = errors.PermissionDenied(
        "METHOD_NOT_GUARDED",
        f"{method} declares no required scope, so no key may call it",
        domain=AUTH_DOMAIN,
    )
    return to_grpc_status(status_for(error, package_of(method), method))


def _refused_async(method: str) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        status = _refusal(method)
        await context.abort(status.code, status.details, tuple(status.trailing_metadata or ()))

    return refuse


def _metadata(call: Call, name: str) -> list[str]:
    return [value for key, value in call.metadata if key == name and isinstance(value, str)]


def _idempotency_key(call: Call) -> str | None:
    if any(key == idempotency_rules.HEADER + "-bin" for key, _ in call.metadata):
        violations = errors.Violations()
        violations.add(
            idempotency_rules.HEADER, "must be sent as text, not -bin", "IDEMPOTENCY_KEY_INVALID"
        )
        violations.raise_if_any()
    return idempotency_rules.check_key(_metadata(call, idempotency_rules.HEADER))
