"""The gRPC server: services, health, reflection and the interceptor, wired once.

It is a grpc.aio server on an event loop of its own thread: the loop receives every
request whole (a caller that never sends its message holds no thread), and the
handlers run in a thread pool of GRPC_MAX_WORKERS threads.
"""

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from arcus.counters.v1 import counters_pb2, counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2, advances_pb2_grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from sqlalchemy import Engine, text

from service.advances.service import Advances
from service.advances.servicer import AdvanceServicer
from service.auth.cache import KeyCache
from service.auth.scopes import method_scopes
from service.auth.store import KeyStore
from service.config import Settings
from service.counters.service import Counters
from service.counters.servicer import CounterServicer, issue_group
from service.db import watchdog
from service.db.coalesce import Coalescer
from service.db.secrets import PAGE_TOKENS, load_secret
from service.db.uow import UnitOfWork
from service.idempotency.store import Clock, Idempotency, system_clock
from service.observability import Observability
from service.pagination import PageTokens
from service.rpc.interceptor import Coalescing, ServiceInterceptor
from service.rpc.methods import mutating_methods

log = logging.getLogger(__name__)
T = TypeVar("T")

# The services this server offers, as descriptors (their methods carry the scopes).
SERVICES = (
    counters_pb2.DESCRIPTOR.services_by_name["CounterService"],
    advances_pb2.DESCRIPTOR.services_by_name["AdvanceService"],
)


ISSUE_NUMBERS = "/arcus.counters.v1.CounterService/IssueNumbers"

# The largest request accepted: a batch of 50 or an advance of 500 lines is far smaller.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Connections (see README, "Limits"): a keepalive ping unanswered this long closes the
# connection; a client may ping no more often than MIN_CLIENT_PING_INTERVAL without calls
# in flight (twice more and its connection is closed: gRPC's "too_many_pings").
KEEPALIVE_TIMEOUT_SECONDS = 20.0
MIN_CLIENT_PING_INTERVAL_SECONDS = 10.0


def all_scopes() -> frozenset[str]:
    return frozenset(method_scopes(SERVICES).values())


class _ReflectionPool:
    """The default descriptor pool, also finding the file of a method's full name, so
    `grpcurl describe arcus.counters.v1.CounterService.AdvanceCounter` works."""

    def __init__(self) -> None:
        self._pool = descriptor_pool.Default()

    def __getattr__(self, name: str) -> object:
        return getattr(self._pool, name)

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service, _, method = symbol.rpartition(".")
            found = self._pool.FindServiceByName(service)
            if method not in found.methods_by_name:
                raise
            return found.file


class ListenError(OSError):
    """The server cannot listen on its address."""


def check_listen(listen: str) -> None:
    """ListenError when this machine refuses `listen` to a new server: for `serve` to ask
    before it makes anything. (run_server's own bind fails too, without SO_REUSEPORT.)"""
    refused = _refused(listen)
    if refused:
        raise ListenError(f"cannot listen on {listen}: {refused}")


def _refused(listen: str) -> str | None:
    """Why this machine refuses `listen` (HOST:PORT) to a new server, if it does ("Address
    already in use"): asked of the OS before gRPC binds, whose own failure says only that
    it failed, and logs it."""
    host, _, port = listen.rpartition(":")
    if port == "0":
        return None
    try:
        found = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as error:
        return str(error)
    for family, kind, protocol, _, address in found:
        with socket.socket(family, kind, protocol) as probe:
            # As gRPC binds: a closed connection's TIME_WAIT is no conflict, a listener is.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                return error.strerror or str(error)
    return None


def channel_options(settings: Settings) -> list[tuple[str, int]]:
    ms = lambda seconds: int(seconds * 1000)  # noqa: E731
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", ms(settings.keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", ms(KEEPALIVE_TIMEOUT_SECONDS)),
        ("grpc.max_connection_idle_ms", ms(settings.max_connection_idle_seconds)),
        ("grpc.max_connection_age_ms", ms(settings.max_connection_age_seconds)),
        ("grpc.max_connection_age_grace_ms", ms(settings.max_connection_age_grace_seconds)),
        ("grpc.server_handshake_timeout_ms", ms(settings.handshake_seconds)),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(MIN_CLIENT_PING_INTERVAL_SECONDS)),
        ("grpc.http2.max_ping_strikes", 2),
        # grpcio shares a port with any process that binds it too (SO_REUSEPORT): a stale
        # or duplicate server would silently take part of the traffic. One server a port.
        ("grpc.so_reuseport", 0),
    ]


class Health(health.aio.HealthServicer):
    """grpc's health servicer, with List (which reflection advertises) answered too."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._server_status.items()
            }
        )

    async def set_all(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        for name in list(self._server_status):
            await self.set(name, status)


class _Loop:
    """An asyncio event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="grpc-aio", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@dataclass
class RunningServer:
    port: int
    health: Health
    observability: Observability
    metrics_port: int | None
    server: grpc.aio.Server
    loop: "_Loop"
    coalescer: Coalescer
    stopped: bool = False

    def stop(self, grace: float | None) -> None:
        """Fails health checks first, so balancers drain us, then lets calls finish."""
        if self.stopped:
            return
        self.stopped = True
        self.loop.run(self._stop(grace))

    async def _stop(self, grace: float | None) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        self.loop.run(self.health.set_all(status))


def build_server(
    engine: Engine,
    keys: KeyCache,
    executor: futures.Executor,
    settings: Settings,
    tokens: PageTokens,
    idempotency: Idempotency | None = None,
    observability: Observability | None = None,
    coalescer: Coalescer | None = None,
) -> tuple[grpc.aio.Server, Health]:
    """The server and its health servicer, made on the running event loop."""
    uow = UnitOfWork(engine)
    coalescer = coalescer or Coalescer(uow)
    interceptor = ServiceInterceptor(
        method_scopes(SERVICES),
        keys.authenticate,
        idempotency or Idempotency(uow),
        mutating_methods(SERVICES),
        observability,
        executor,
        coalescing=Coalescing(coalescer, {ISSUE_NUMBERS: issue_group}),
    )
    server = grpc.aio.server(
        migration_thread_pool=executor,
        interceptors=[interceptor],
        # Excess load is shed, not queued without bound: past this many calls in flight
        # (running or waiting for a worker) a call is refused with RESOURCE_EXHAUSTED.
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=channel_options(settings),
    )
    counters = Counters(uow, tokens, observability)
    counters_pb2_grpc.add_CounterServiceServicer_to_server(CounterServicer(counters), server)
    advances_pb2_grpc.add_AdvanceServiceServicer_to_server(
        AdvanceServicer(Advances(uow, tokens, counters)), server
    )

    health_servicer = Health()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    _enable_reflection(server, [s.full_name for s in SERVICES] + [health.SERVICE_NAME])
    return server, health_servicer


# Server reflection under both names: v1 (which buf curl, grpcurl and grpcui ask first) and
# v1alpha (older tools). v1 is v1alpha promoted unchanged, the same messages under another
# package, so one servicer answers both; grpcio-reflection ships only v1alpha's.
REFLECTION_SERVICES = (reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection")


def _v1_reflection_file() -> None:
    """Adds grpc/reflection/v1/reflection.proto to the default pool, made from v1alpha's
    (so that reflection describes itself under both names)."""
    pool = descriptor_pool.Default()
    v1, v1alpha = "grpc.reflection.v1", reflection_pb2.DESCRIPTOR.package
    try:
        pool.FindFileByName("grpc/reflection/v1/reflection.proto")
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = "grpc/reflection/v1/reflection.proto", v1
    proto.ClearField("options")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(f".{v1alpha}.", f".{v1}.")
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(f".{v1alpha}.", f".{v1}.")
            method.output_type = method.output_type.replace(f".{v1alpha}.", f".{v1}.")
    pool.Add(proto)


def _enable_reflection(server: grpc.aio.Server, service_names: list[str]) -> None:
    _v1_reflection_file()
    servicer = reflection.aio.ReflectionServicer(
        [*service_names, *REFLECTION_SERVICES], pool=_ReflectionPool()
    )
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": info})
         for name in REFLECTION_SERVICES]
    )  # fmt: skip


def _every(seconds: float, stop: threading.Event, task: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        while not stop.wait(seconds):
            task()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _sweep(idempotency: Idempotency) -> None:
    """Purges idempotency records past their 24 hours."""
    try:
        purged = idempotency.purge()
        if purged:
            log.info("purged %d expired idempotency records", purged)
    except Exception:
        log.exception("idempotency sweep failed; trying again later")


def database_answers(uow: UnitOfWork, timeout: float) -> bool:
    """Whether the database answers a trivial query within `timeout` seconds."""
    try:
        with watchdog.bounded(time.monotonic() + timeout):
            uow.read(lambda conn: conn.execute(text("SELECT 1")))
        return True
    except Exception:
        return False


class _HealthProbe:
    """Health follows the database: NOT_SERVING while it does not answer."""

    def __init__(self, uow: UnitOfWork, running: RunningServer, timeout: float) -> None:
        self.uow, self.running, self.timeout = uow, running, timeout
        self.serving = True

    def __call__(self) -> None:
        serving = database_answers(self.uow, self.timeout)
        if serving != self.serving:
            self.serving = serving
            if serving:
                log.warning("the database answers again: serving")
            else:
                log.error("the database does not answer: health is NOT_SERVING")
            self.running.set_serving(serving)


@contextmanager
def run_server(
    engine: Engine,
    settings: Settings,
    clock: Clock = system_clock,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[RunningServer]:
    """Serves `settings.listen` until the block ends, then stops gracefully. A listen port
    of 0 picks a free port (see RunningServer.port). `clock` and `monotonic` are the
    wall and the monotonic clocks (tests move them)."""
    uow = UnitOfWork(engine)
    idempotency = Idempotency(uow, clock)
    observability = Observability(engine)
    keys = KeyCache(KeyStore(uow).find_by_hash, settings.key_cache_seconds, monotonic)
    tokens = PageTokens(load_secret(uow, PAGE_TOKENS))
    executor = futures.ThreadPoolExecutor(settings.max_workers, thread_name_prefix="rpc")
    coalescer = Coalescer(uow)
    loop = _Loop()

    async def start() -> tuple[grpc.aio.Server, Health, int]:
        server, health_servicer = build_server(
            engine, keys, executor, settings, tokens, idempotency, observability, coalescer
        )
        if settings.tls_cert is None or settings.tls_key is None:
            port = server.add_insecure_port(settings.listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(settings.tls_key, settings.tls_cert)],
                root_certificates=settings.tls_client_ca,
                require_client_auth=settings.tls_client_ca is not None,
            )
            port = server.add_secure_port(settings.listen, credentials)
        if port == 0:
            raise ListenError(f"cannot listen on {settings.listen}")
        for name in ("", *(service.full_name for service in SERVICES)):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        await server.start()
        return server, health_servicer, port

    try:
        server, health_servicer, port = loop.run(start())
    except Exception as error:
        loop.close()
        executor.shutdown()
        if isinstance(error, ListenError):
            raise
        raise ListenError(f"cannot listen on {settings.listen}: {error}") from error
    metrics_port = (
        observability.serve_metrics(settings.metrics_listen) if settings.metrics_listen else None
    )
    running = RunningServer(
        port, health_servicer, observability, metrics_port, server, loop, coalescer
    )
    stop_background = threading.Event()
    background = [
        _every(settings.idempotency_sweep_seconds, stop_background, lambda: _sweep(idempotency)),
        _every(
            settings.health_probe_seconds,
            stop_background,
            _HealthProbe(uow, running, settings.health_probe_timeout_seconds),
        ),
    ]
    try:
        yield running
    finally:
        stop_background.set()
        for thread in background:
            thread.join()
        running.stop(grace=settings.grace_seconds)
        executor.shutdown(wait=True, cancel_futures=True)
        loop.close()
        observability.close()
