"""The gRPC server: services, health, reflection and the interceptor, wired once."""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from arcus.counters.v1 import counters_pb2, counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2, advances_pb2_grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine

from service.advances.service import Advances
from service.advances.servicer import AdvanceServicer
from service.auth.cache import DEFAULT_TTL_SECONDS, KeyCache
from service.auth.scopes import method_scopes
from service.auth.store import KeyStore
from service.counters.service import Counters
from service.counters.servicer import CounterServicer
from service.db.uow import UnitOfWork
from service.idempotency.store import Clock, Idempotency, system_clock
from service.observability import Observability
from service.rpc.interceptor import ServiceInterceptor
from service.rpc.methods import mutating_methods

log = logging.getLogger(__name__)
# Handler threads. Python runs one at a time; more threads waiting on the database only
# add GIL handoffs: with 8, AdvanceCounter ran 1.2 x and IssueNumbers 1.5 x as fast
# as with 32 (see BENCHMARKS.md).
DEFAULT_WORKERS = 8

# The services this server offers, as descriptors (their methods carry the scopes).
SERVICES = (
    counters_pb2.DESCRIPTOR.services_by_name["CounterService"],
    advances_pb2.DESCRIPTOR.services_by_name["AdvanceService"],
)


# The largest request accepted: a batch of 50 or an advance of 500 lines is far smaller.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


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


@dataclass(frozen=True)
class Tls:
    """The server's certificate and key (PEM); with client_ca, clients must present a
    certificate it signed."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


@dataclass(frozen=True)
class ServeOptions:
    listen: str = "127.0.0.1:0"
    max_workers: int = DEFAULT_WORKERS
    # Calls running or queued for a worker; past this, RESOURCE_EXHAUSTED at once.
    max_concurrent_rpcs: int = 256
    grace_seconds: float = 10.0
    tls: Tls | None = None
    metrics_listen: str = ""  # HOST:PORT for /metrics; "" for none
    sweep_every: float = 600.0
    clock: Clock = system_clock
    # How long a server remembers a key it has looked up: a revoked key keeps working
    # here for at most this long. 0 looks every key up on every call.
    key_cache_seconds: float = DEFAULT_TTL_SECONDS
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    observability: Observability
    metrics_port: int | None

    def stop(self, grace: float | None) -> None:
        """Fails health checks first, so balancers drain us, then lets calls finish."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def build_server(
    engine: Engine,
    keys: KeyCache,
    max_workers: int = DEFAULT_WORKERS,
    idempotency: Idempotency | None = None,
    observability: Observability | None = None,
    max_concurrent_rpcs: int | None = None,
) -> tuple[grpc.Server, health.HealthServicer]:
    uow = UnitOfWork(engine)
    interceptor = ServiceInterceptor(
        method_scopes(SERVICES),
        keys.authenticate,
        idempotency or Idempotency(uow),
        mutating_methods(SERVICES),
        observability,
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[interceptor],
        # Excess load is shed, not queued without bound: past this many calls in flight
        # (running or waiting for a worker) a call is refused with RESOURCE_EXHAUSTED.
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
    )
    counters = CounterServicer(Counters(uow), observability)
    counters_pb2_grpc.add_CounterServiceServicer_to_server(counters, server)
    advances_pb2_grpc.add_AdvanceServiceServicer_to_server(AdvanceServicer(Advances(uow)), server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in SERVICES:
        health_servicer.set(service.full_name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    reflection.enable_server_reflection(
        [s.full_name for s in SERVICES] + [health.SERVICE_NAME, reflection.SERVICE_NAME],
        server,
        pool=_ReflectionPool(),
    )
    return server, health_servicer


def _sweep(idempotency: Idempotency, every: float, stop: threading.Event) -> None:
    """Purges idempotency records past their 24 hours, every `every` seconds."""
    while not stop.wait(every):
        try:
            purged = idempotency.purge()
            if purged:
                log.info("purged %d expired idempotency records", purged)
        except Exception:
            log.exception("idempotency sweep failed; trying again later")


@contextmanager
def run_server(engine: Engine, options: ServeOptions | None = None) -> Iterator[RunningServer]:
    """Serves until the block ends, then stops gracefully. A listen port of 0 picks a
    free port (see RunningServer.port)."""
    options = options or ServeOptions()
    idempotency = Idempotency(UnitOfWork(engine), options.clock)
    observability = Observability(engine)
    keys = KeyCache(
        KeyStore(UnitOfWork(engine)).find_by_hash, options.key_cache_seconds, options.monotonic
    )
    server, health_servicer = build_server(
        engine, keys, options.max_workers, idempotency, observability, options.max_concurrent_rpcs
    )
    if options.tls is None:
        port = server.add_insecure_port(options.listen)
    else:
        credentials = grpc.ssl_server_credentials(
            [(options.tls.key, options.tls.cert)],
            root_certificates=options.tls.client_ca,
            require_client_auth=options.tls.client_ca is not None,
        )
        port = server.add_secure_port(options.listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {options.listen}")
    metrics_port = (
        observability.serve_metrics(options.metrics_listen) if options.metrics_listen else None
    )
    server.start()
    stop_sweeping = threading.Event()
    sweeper = threading.Thread(
        target=_sweep,
        args=(idempotency, options.sweep_every, stop_sweeping),
        name="idempotency-sweep",
        daemon=True,
    )
    sweeper.start()
    running = RunningServer(server, port, health_servicer, observability, metrics_port)
    try:
        yield running
    finally:
        stop_sweeping.set()
        running.stop(grace=options.grace_seconds)
        sweeper.join()
        observability.close()
