"""What operators see: one JSON log line per RPC, and Prometheus metrics."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

log = logging.getLogger("service.rpc")


@dataclass(frozen=True)
class CallRecord:
    method: str
    code: str  # a grpc.StatusCode name
    seconds: float
    peer: str
    entity: str = ""
    key_id: int | None = None
    idempotency_key: str = ""
    replayed: bool = False


class _PoolCollector(Collector):
    """The database pool, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.pool
        if isinstance(pool, QueuePool):
            yield GaugeMetricFamily("arcus_db_pool_size", "Connections the pool keeps", pool.size())
            yield GaugeMetricFamily(
                "arcus_db_pool_checked_out", "Connections in use", pool.checkedout()
            )
            yield GaugeMetricFamily(
                "arcus_db_pool_overflow", "Connections beyond the pool size", pool.overflow()
            )


class Observability:
    """Logs and metrics of one server; its own registry, so servers never share counts."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self._calls = Counter(
            "arcus_rpc_requests", "RPCs handled", ["method", "code"], registry=self.registry
        )
        self._seconds = Histogram(
            "arcus_rpc_duration_seconds",
            "RPC handling time",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self._advanced = Counter(
            "arcus_counters_advanced", "Counters created or advanced", ["counter_type"],
            registry=self.registry,
        )  # fmt: skip
        self._issued = Counter(
            "arcus_numbers_issued", "Document numbers issued", ["counter_type"],
            registry=self.registry,
        )  # fmt: skip
        self._call_counts: dict[tuple[str, str], Any] = {}
        self._call_seconds: dict[str, Any] = {}
        self.registry.register(_PoolCollector(engine))
        self._http: WSGIServer | None = None

    def call(self, record: CallRecord) -> None:
        # Each label set's child looked up once (labels() costs ~10 µs a call).
        calls = self._call_counts.get((record.method, record.code))
        if calls is None:
            calls = self._call_counts[record.method, record.code] = self._calls.labels(
                record.method, record.code
            )
        calls.inc()
        seconds = self._call_seconds.get(record.method)
        if seconds is None:
            seconds = self._call_seconds[record.method] = self._seconds.labels(record.method)
        seconds.observe(record.seconds)
        fields = {
            "method": record.method,
            "code": record.code,
            "duration_ms": round(record.seconds * 1000, 3),
            "peer": record.peer,
            "entity": record.entity,
            "key_id": record.key_id,
            "idempotency_key": record.idempotency_key,
            "replayed": record.replayed,
        }
        log.info("rpc %s %s", record.method, record.code, extra={"fields": fields})

    def advanced(self, counter_type: str) -> None:
        self._advanced.labels(counter_type).inc()

    def issued(self, counter_type: str, count: int) -> None:
        self._issued.labels(counter_type).inc(count)

    def serve_metrics(self, listen: str) -> int:
        """Serves /metrics on `listen` (HOST:PORT; port 0 picks one); returns the port."""
        host, _, port = listen.rpartition(":")
        server, _thread = start_http_server(int(port), host, registry=self.registry)
        self._http = server
        return int(server.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
