"""Optional OpenTelemetry tracing: a server span per RPC that continues the caller's trace,
and a child span per SQL statement the RPC runs. Off unless the standard OTEL_* variables
ask for it; then the SDK reads them (exporter, endpoint, sampler, resource, batching).

Knows gRPC and SQLAlchemy, nothing of the domain: the interceptor says what a call's
attributes are. Never records a statement's parameters (key hashes, customer data) nor a
request's body; the interceptor never gives it the key.

`configure` installs tracing for the servers built from then on: `serve` calls it with
nothing (the environment decides), a test with a provider of its own. The OpenTelemetry
global provider is left alone (it can be set only once a process; tests start many
servers). The SDK itself is imported only when tracing is on.
"""

import importlib.metadata
import logging
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from sqlalchemy import Engine, event

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

SERVICE_NAME = "arcus-service"  # the resource's service.name unless OTEL_SERVICE_NAME says
# Codes that mean the server failed (OpenTelemetry's gRPC server conventions): the span's
# status is then ERROR; any other code leaves it unset (the caller's mistake, not ours).
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# A statement's text is recorded up to this many characters (a bulk insert's is long).
STATEMENT_CHARS = 4096
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

Metadata = Sequence[tuple[str, str | bytes]]


class TracingError(ValueError):
    """The OTEL_* variables ask for something this installation cannot do."""


def _version() -> str:
    try:
        return importlib.metadata.version(SERVICE_NAME)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "0"


class Tracing:
    """A tracer provider in use: starts the spans of RPCs (see `rpc`)."""

    def __init__(self, provider: "TracerProvider") -> None:
        from opentelemetry import propagate  # reads OTEL_PROPAGATORS when first imported

        self.provider = provider
        self._tracer = provider.get_tracer(SERVICE_NAME, _version())
        # The configured propagator (OTEL_PROPAGATORS; by default W3C trace context and
        # baggage): reads `traceparent` and `tracestate` from the call's metadata.
        self._extract = propagate.extract

    def rpc(self, method: str, metadata: Metadata, peer: str) -> "RpcSpan":
        """The server span of a call to `method` ("/pkg.Service/Method"), current in this
        thread (so what the call runs here, its SQL included, nests under it) until
        `RpcSpan.end`, which must be called in the same thread."""
        return RpcSpan(self._tracer, self._extract(metadata, getter=_METADATA), method, peer)

    def shutdown(self) -> None:
        """Exports what is buffered and stops; servers built from now on are not traced."""
        global _installed
        with _engines_lock:
            if _installed is self:
                _installed = None
        self.provider.shutdown()


class RpcSpan:
    """One RPC's server span, attached to the context of the thread that runs the call."""

    __slots__ = ("_span", "_statements", "_token")

    def __init__(self, tracer: Tracer, parent: Context, method: str, peer: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        attributes: dict[str, AttributeValue] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            **_peer_attributes(peer),
        }
        self._span = tracer.start_span(f"{service}/{name}", parent, SpanKind.SERVER, attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self._span, parent))
        # SQL spans only under a span that is recorded (sampled): none are made otherwise.
        self._statements = _statement_tracer.set(tracer if self._span.is_recording() else None)

    def end(self, code: grpc.StatusCode, attributes: Mapping[str, AttributeValue]) -> None:
        """Records the call's outcome and ends the span; its context leaves the thread."""
        try:
            self._span.set_attributes(attributes)
            self._span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in SERVER_FAULTS:
                self._span.set_status(StatusCode.ERROR, code.name)
            self._span.end()
        finally:
            _statement_tracer.reset(self._statements)
            otel_context.detach(self._token)


def _peer_attributes(peer: str) -> dict[str, AttributeValue]:
    """gRPC's peer ("ipv4:10.0.0.7:51234", "ipv6:[::1]:51234", "unix:/run/s") as the
    conventions' network attributes."""
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host, _, port = address.rpartition(":")
        if port.isdigit():
            return {"network.peer.address": host.strip("[]"), "network.peer.port": int(port)}
    elif kind == "unix":
        return {"network.transport": "unix"}
    return {}


class _MetadataGetter(Getter[Metadata]):
    """Reads propagation fields from a call's metadata (text values only)."""

    def get(self, carrier: Metadata, key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key and isinstance(value, str)]
        return values or None

    def keys(self, carrier: Metadata) -> list[str]:
        return [name for name, _ in carrier]


_METADATA = _MetadataGetter()

_installed: Tracing | None = None
# The tracer of the RPC span current in this thread, if it is recorded: SQL spans are made
# only then (a statement outside any RPC, or with tracing off, costs one lookup).
_statement_tracer: ContextVar[Tracer | None] = ContextVar("statement_tracer", default=None)


def statements_traced() -> bool:
    """Whether the statements run here now belong to a recorded RPC span."""
    return _statement_tracer.get() is not None


def installed() -> Tracing | None:
    """The tracing servers built now use (None: off)."""
    return _installed


def configure(provider: "TracerProvider | None" = None) -> Tracing | None:
    """Installs tracing for the servers built from now on and returns it (None: off):
    `provider` if given (a test's, with its own exporter), else the one the OTEL_*
    variables ask for (see `from_environment`). Raises TracingError when they ask for
    what cannot be done (an exporter that is not installed)."""
    global _installed
    if provider is None:
        provider = from_environment()
    with _engines_lock:
        _installed = None if provider is None else Tracing(provider)
        if _installed is not None:
            for engine in list(_engines):
                _listen(engine)
    return _installed


def from_environment() -> "TracerProvider | None":
    """The tracer provider the OTEL_* variables ask for, or None for none.

    Tracing is off unless OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`, or
    several, comma-separated), or an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: OTLP export, the specification's default exporter,
    there). OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true switch it off. Everything
    else is the SDK's: OTEL_SERVICE_NAME (default arcus-service), OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_* (endpoint, headers, TLS, protocol,
    timeout), OTEL_BSP_*, OTEL_SPAN_*_LIMIT, OTEL_PROPAGATORS.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    asked = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if asked.lower() == "none" or not (asked or any(os.environ.get(e) for e in _OTLP_ENDPOINTS)):
        return None

    # The SDK's own reading of OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP(_TRACES)_PROTOCOL
    # and its exporters' entry points, as `opentelemetry-instrument` uses them (private
    # names: the SDK's version is pinned in constraints.txt, and tests/e2e/test_tracing.py
    # runs this path).
    from opentelemetry.sdk._configuration import (
        _get_exporter_entry_point,
        _get_exporter_names,
        _import_exporters,
    )
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    try:
        names = _get_exporter_names("traces") if asked else []
        names = names or [_get_exporter_entry_point("otlp", "traces")]
        exporters, _, _ = _import_exporters(names, [], [])
    except (RuntimeError, ValueError) as error:
        raise TracingError(f"OTEL_TRACES_EXPORTER={asked or 'otlp'!r}: {error}") from error
    try:
        import opentelemetry.propagate  # noqa: F401  (reads OTEL_PROPAGATORS)
    except ValueError as error:
        raise TracingError(f"OTEL_PROPAGATORS: {error}") from error

    # Ours unless the environment names them (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
    given = OTELResourceDetector().detect().attributes
    defaults = {"service.name": SERVICE_NAME, "service.version": _version()}
    resource = Resource.create({k: v for k, v in defaults.items() if k not in given})
    provider = TracerProvider(resource=resource)  # reads OTEL_TRACES_SAMPLER, span limits
    for name, exporter_class in exporters.items():
        exporter = exporter_class()  # reads its own OTEL_EXPORTER_* variables
        if isinstance(exporter, ConsoleSpanExporter):
            # For a person watching: each span printed as it ends.
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            provider.add_span_processor(BatchSpanProcessor(exporter))  # reads OTEL_BSP_*
        log.info(
            "tracing: spans of service %s exported by %s",
            resource.attributes.get("service.name"),
            name,
        )
    return provider


# Engines whose statements are traced whenever tracing is on, now or once configured: their
# listeners are added only then (SQLAlchemy's event dispatch costs ~2 us a statement, even
# for listeners that find nothing to do), and stay.
_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_listened: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_engines_lock = threading.Lock()


def trace_statements(engine: Engine) -> None:
    """A CLIENT span per statement `engine` runs inside a recorded RPC span, its child:
    the statement's text with its placeholders, never the values bound to them. Costs
    nothing while tracing is off."""
    with _engines_lock:
        _engines.add(engine)
        if _installed is not None:
            _listen(engine)


def _listen(engine: Engine) -> None:
    if engine in _listened:
        return
    _listened.add(engine)
    system = "postgresql" if engine.dialect.name == "postgresql" else engine.dialect.name
    fixed: dict[str, AttributeValue] = {"db.system": system, "db.system.name": system}
    if system == "postgresql":
        url = engine.url
        if url.host:
            fixed["server.address"] = url.host
        if url.port:
            fixed["server.port"] = url.port
        if url.database:
            fixed["db.namespace"] = url.database

    @event.listens_for(engine, "before_cursor_execute")
    def _start(
        _conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        tracer = _statement_tracer.get()
        if tracer is None or context is None:
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        text = statement if len(statement) <= STATEMENT_CHARS else statement[:STATEMENT_CHARS]
        attributes = {**fixed, "db.query.text": text, "db.statement": text}
        if operation:
            attributes["db.operation.name"] = operation
        context._arcus_span = tracer.start_span(
            operation or system, kind=SpanKind.CLIENT, attributes=attributes
        )

    @event.listens_for(engine, "after_cursor_execute")
    def _end(
        _conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        span = getattr(context, "_arcus_span", None)
        if span is not None:
            context._arcus_span = None
            span.end()

    @event.listens_for(engine, "handle_error")
    def _failed(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, "_arcus_span", None)
        if span is None:
            return
        context._arcus_span = None
        # The error's class only: a driver's message may quote the statement's parameters.
        error = type(exception_context.original_exception).__name__
        span.set_attribute("error.type", error)
        span.set_status(StatusCode.ERROR, error)
        span.end()
