"""Tracing (OpenTelemetry, README "Tracing"): off unless OTEL_* variables ask for it; then a
server span per RPC that continues the caller's W3C trace, the SQL it runs as child spans
(statements, never their values), entity and method as attributes, and never the key.

In-process servers get an SDK provider with an in-memory exporter through the function
`serve` uses (`tracing.configure`); `python -m service serve` shows that the variables
alone switch it on.
"""

import json
from collections.abc import Iterator

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2, advances_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service import tracing
from service.auth.keys import hash_key
from service.server import RunningServer, run_server
from tests.advances import advance_message, item, payload
from tests.processes import cli, served
from tests.support import LOCAL, auth

INVOICE = pb.COUNTER_TYPE_INVOICE
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
CALLER = (("traceparent", TRACEPARENT), ("tracestate", "caller=t61rcWkgMzE"))
PREFIX = "TRACED-"  # a value bound to a statement: must never show in a span


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests decide tracing, not the environment they run in."""
    import os

    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Spans of the servers started from now on, as the SDK exports them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traces = tracing.configure(provider)
    assert traces is not None and tracing.installed() is traces
    yield exporter
    traces.shutdown()
    assert tracing.installed() is None


@pytest.fixture
def traced(exporter: InMemorySpanExporter, database) -> Iterator[RunningServer]:
    with run_server(database, LOCAL) as running:
        yield running


@pytest.fixture
def stub(traced: RunningServer) -> Iterator[counters_pb2_grpc.CounterServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        yield counters_pb2_grpc.CounterServiceStub(channel)


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]


def children(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in exporter.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def assert_never_the_key(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], key: str) -> None:
    """No span's name, attribute or event holds the key, its secret part, or its hash."""
    secret = key.rsplit("_", 1)[1]
    assert len(secret) >= 20
    assert spans
    for span in spans:
        texts = [span.name, *(str(value) for value in (span.attributes or {}).values())]
        for event in span.events:
            texts += [event.name, *(str(value) for value in (event.attributes or {}).values())]
        for said in texts:
            for forbidden in (key, secret, hash_key(key)):
                assert forbidden not in said, (span.name, said)


def test_a_call_continues_the_callers_trace_with_its_sql_as_children(exporter, stub, key, database):
    response = stub.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=41, prefix=PREFIX),
        metadata=auth(key) + CALLER,
    )
    assert response.created

    [span] = server_spans(exporter)
    assert span.name == "arcus.counters.v1.CounterService/AdvanceCounter"
    assert span.context is not None and span.parent is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID  # the caller's trace
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID and span.parent.is_remote
    assert span.context.trace_state.get("caller") == "t61rcWkgMzE"  # tracestate carried on
    attributes = dict(span.attributes or {})
    assert attributes.pop("network.peer.address") == "127.0.0.1"
    assert isinstance(attributes.pop("network.peer.port"), int)
    assert isinstance(attributes.pop("arcus.key_id"), int)  # the key's id, as in the logs
    assert attributes == {
        "rpc.system": "grpc",
        "rpc.service": "arcus.counters.v1.CounterService",
        "rpc.method": "AdvanceCounter",
        "rpc.grpc.status_code": 0,
        "arcus.entity": "acme",
        "arcus.mode": "live",
    }
    assert span.status.status_code == StatusCode.UNSET

    # Every statement the call ran (the key's lookup too) is a child of the RPC's span.
    sql = children(exporter, span)
    client_spans = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert sql and sorted(s.name for s in sql) == sorted(s.name for s in client_spans)
    backend = database.dialect.name
    statements = []
    for child in sql:
        assert child.kind == SpanKind.CLIENT
        assert child.context is not None and format(child.context.trace_id, "032x") == TRACE_ID
        child_attributes = child.attributes or {}
        assert child_attributes["db.system"] == backend
        assert child_attributes["db.system.name"] == backend
        statement = str(child_attributes["db.query.text"])
        assert child_attributes["db.statement"] == statement
        assert child.name == child_attributes["db.operation.name"] == statement.split()[0]
        statements.append(statement)
    placeholder = "?" if backend == "sqlite" else "%("
    key_lookup = [s for s in statements if "FROM api_keys" in s and "key_hash" in s]
    assert key_lookup and placeholder in key_lookup[0]
    inserts = [s for s in statements if s.startswith("INSERT INTO counter")]
    assert inserts and all(placeholder in s for s in inserts)
    assert not [s for s in statements if PREFIX in s or "41" in s.split()]  # values unbound
    assert_never_the_key(exporter.get_finished_spans(), key)


def test_an_advance_is_traced_without_its_customer_data(exporter, traced, key):
    customer, memo = "CUST-7f3a9c", "memo-of-a-customer-b41d"
    body = payload(
        customer={"id": customer},
        referenceNumber="REF-5e8d21",
        description=memo,
        items=[item("98765.43")],
    )
    with grpc.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        stub = advances_pb2_grpc.AdvanceServiceStub(channel)
        created = stub.CreateAdvance(
            advances_pb2.CreateAdvanceRequest(advance=advance_message(body)),
            metadata=auth(key) + CALLER,
        )
        stub.GetAdvance(advances_pb2.GetAdvanceRequest(key=created.key), metadata=auth(key))
    spans = server_spans(exporter)
    assert [s.name for s in spans] == [
        "arcus.receivables.v1.AdvanceService/CreateAdvance",
        "arcus.receivables.v1.AdvanceService/GetAdvance",
    ]
    assert [(s.attributes or {})["arcus.entity"] for s in spans] == ["acme", "acme"]
    inserts = [
        str((s.attributes or {})["db.query.text"])
        for s in children(exporter, spans[0])
        if s.name == "INSERT"
    ]
    assert any(statement.startswith("INSERT INTO advances ") for statement in inserts)
    everything = [
        str(value) for span in exporter.get_finished_spans() for value in span.attributes.values()
    ]
    for value in (customer, memo, "REF-5e8d21"):
        assert not [text for text in everything if value in text], value
    statements = [
        s.attributes["db.query.text"]
        for s in exporter.get_finished_spans()
        if s.attributes and "db.query.text" in s.attributes
    ]
    assert statements and not [s for s in statements if "9876543" in str(s)]  # the amount
    assert_never_the_key(exporter.get_finished_spans(), key)


def test_a_call_without_a_caller_trace_starts_one(exporter, stub, key):
    stub.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix=PREFIX),
        metadata=auth(key),
    )
    [span] = server_spans(exporter)
    assert span.parent is None and span.context is not None
    assert {s.context.trace_id for s in children(exporter, span) if s.context} == {
        span.context.trace_id
    }


def test_an_idempotent_retry_says_it_was_replayed(exporter, stub, key):
    stub.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=0, prefix=PREFIX),
        metadata=auth(key),
    )
    retried = (*auth(key), ("idempotency-key", "issue-1"), *CALLER)
    first = stub.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=retried)
    again = stub.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=retried)
    assert first.numbers == again.numbers
    issued = [s for s in server_spans(exporter) if s.name.endswith("/IssueNumbers")]
    assert [(s.attributes or {}).get("arcus.replayed") for s in issued] == [False, True]
    assert {(s.attributes or {}).get("arcus.idempotency_key") for s in issued} == {"issue-1"}
    assert_never_the_key(exporter.get_finished_spans(), key)


def test_refused_calls_get_spans_with_their_code_and_never_the_key(exporter, stub, keys, key):
    stranger = "ark_live_ent_" + "S3cr3t" * 6
    reader = keys.create(scopes=["counters:read"])
    invoice, code = pb.GetCounterRequest(counter_type=INVOICE), grpc.StatusCode
    calls = [
        (auth(stranger), invoice, code.UNAUTHENTICATED),  # an unknown key
        ((), invoice, code.UNAUTHENTICATED),  # none
        (auth(key), invoice, code.NOT_FOUND),
        (auth(key), pb.GetCounterRequest(), code.INVALID_ARGUMENT),
    ]
    for metadata, request, expected in calls:
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetCounter(request, metadata=metadata + CALLER)
        assert caught.value.code() == expected
    with pytest.raises(grpc.RpcError) as caught:  # a key without the scope
        stub.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(reader))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    spans = server_spans(exporter)
    codes = [(s.attributes or {})["rpc.grpc.status_code"] for s in spans]
    assert codes == [16, 16, 5, 3, 7]
    assert [(s.attributes or {}).get("arcus.entity") for s in spans] == [
        None, None, "acme", "acme", "acme"
    ]  # fmt: skip
    # The caller's mistakes, not the server's: the spans' status stays unset.
    assert {s.status.status_code for s in spans} == {StatusCode.UNSET}
    for secret in (stranger, key, reader):
        assert_never_the_key(exporter.get_finished_spans(), secret)


def test_a_server_fault_marks_the_span_as_an_error():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traces = tracing.Tracing(provider)
    for code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
        traces.rpc("/arcus.counters.v1.CounterService/GetCounter", CALLER, "").end(code, {})
    statuses = [span.status for span in exporter.get_finished_spans()]
    assert [(s.status_code, s.description) for s in statuses] == [
        (StatusCode.ERROR, "INTERNAL"), (StatusCode.ERROR, "UNAVAILABLE"), (StatusCode.UNSET, None)
    ]  # fmt: skip


def test_a_failing_statement_ends_its_span_as_an_error_without_its_values(exporter, database):
    traces = tracing.installed()
    assert traces is not None
    span = traces.rpc("/arcus.counters.v1.CounterService/GetCounter", CALLER, "")
    try:
        with database.connect() as connection, pytest.raises(DBAPIError):
            connection.execute(
                text("SELECT * FROM no_such_table WHERE name = :name"), {"name": "s3cr3t-value"}
            )
    finally:
        span.end(grpc.StatusCode.INTERNAL, {})
    [rpc] = server_spans(exporter)
    [failed] = [s for s in children(exporter, rpc) if "no_such_table" in str(s.attributes)]
    assert failed.status.status_code == StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == failed.status.description
    assert failed.status.description in ("OperationalError", "UndefinedTable")
    assert "s3cr3t-value" not in str([(s.attributes, s.status) for s in (rpc, failed)])


def test_switched_off_nothing_is_traced_and_the_service_works(exporter, database, key):
    assert tracing.configure() is None  # no OTEL_* variable: off
    assert tracing.installed() is None
    with (
        run_server(database, LOCAL) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = counters_pb2_grpc.CounterServiceStub(channel)
        stub.AdvanceCounter(
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix=PREFIX),
            metadata=auth(key) + CALLER,
        )
        issued = stub.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key))
        assert issued.numbers == [f"{PREFIX}0000002"]
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_SERVICE_NAME": "arcus", "OTEL_TRACES_SAMPLER": "always_on"},
    ],
)
def test_the_environment_alone_leaves_tracing_off(monkeypatch, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracing.from_environment() is None


def test_the_environment_names_the_service_and_the_exporter(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = tracing.from_environment()
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "arcus-service"
    provider.shutdown()

    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-arcus")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
    provider = tracing.from_environment()
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "billing-arcus"
    assert provider.resource.attributes["deployment.environment.name"] == "staging"
    provider.shutdown()

    # An OTLP endpoint alone asks for OTLP export there (made, not yet connected).
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    provider = tracing.from_environment()
    assert provider is not None
    provider.shutdown()

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(tracing.TracingError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        tracing.from_environment()


def test_serve_refuses_an_exporter_it_does_not_have_in_one_line(tmp_path):
    result = cli("serve", cwd=tmp_path, GRPC_LISTEN="127.0.0.1:0", OTEL_TRACES_EXPORTER="zipkin")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: OTEL_TRACES_EXPORTER='zipkin': ")
    assert not (tmp_path / "var").exists()  # nothing was made


def console_spans(text: str) -> list[dict]:
    """The JSON objects the console exporter printed, among serve's other output."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        try:
            span, end = decoder.raw_decode(text, at)
        except ValueError:
            at += 1
            continue
        found.append(span)
        at = end
    return found


def test_serve_traces_when_the_environment_says_so_and_only_then(tmp_path):
    traced_dir, quiet_dir = tmp_path / "traced", tmp_path / "quiet"
    traced_dir.mkdir()
    quiet_dir.mkdir()
    with served(traced_dir, OTEL_TRACES_EXPORTER="console") as server:
        key = (traced_dir / "var" / "dev-api-key").read_text().strip()
        with grpc.insecure_channel(server.address) as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            stub.AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=7, prefix=PREFIX),
                metadata=auth(key) + CALLER,
            )
    assert server.process.returncode == 0
    spans = console_spans(server.stdout.read_text())
    [rpc] = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert rpc["name"] == "arcus.counters.v1.CounterService/AdvanceCounter"
    assert rpc["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert rpc["parent_id"] == f"0x{CALLER_SPAN_ID}"
    assert rpc["attributes"]["arcus.entity"] == "dev"
    assert rpc["attributes"]["arcus.mode"] == "test"
    assert rpc["resource"]["attributes"]["service.name"] == "arcus-service"
    sql = [s for s in spans if s["parent_id"] == rpc["context"]["span_id"]]
    assert sql and {s["attributes"]["db.system"] for s in sql} == {"sqlite"}
    assert key not in server.output() and key.rsplit("_", 1)[1] not in server.output()

    with served(quiet_dir) as server:
        key = (quiet_dir / "var" / "dev-api-key").read_text().strip()
        with grpc.insecure_channel(server.address) as channel:
            counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=7, prefix=PREFIX),
                metadata=auth(key) + CALLER,
            )
    assert console_spans(server.stdout.read_text()) == []
    assert "trace" not in server.output().lower()
