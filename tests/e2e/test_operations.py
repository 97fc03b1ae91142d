"""Operating the service: one log line per RPC, metrics, TLS, graceful shutdown."""

import contextlib
import json
import signal
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.client import connect
from service.server import SERVICES, run_server
from tests.errors import rich_error
from tests.postgres import free_port
from tests.processes import served
from tests.support import local_settings
from tests.tools import Threads, violations, wait_for

INVOICE = pb.COUNTER_TYPE_INVOICE


def log_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # the dev-key banner is not JSON
            lines.append(json.loads(line))
    return lines


def test_one_json_log_line_per_rpc_and_never_the_key(tmp_path):
    with served(tmp_path) as server:
        key = (tmp_path / "var" / "dev-api-key").read_text().strip()
        with connect(server.address, key) as arcus:
            arcus.counters.AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=5, prefix="I")
            )
            arcus.with_idempotency_key("retry-1").counters.IssueNumbers(
                pb.IssueNumbersRequest(counter_type=INVOICE)
            )
            with pytest.raises(grpc.RpcError) as caught:
                arcus.counters.GetCounter(pb.GetCounterRequest(counter_type=pb.COUNTER_TYPE_PO))
            error = rich_error(caught.value)
            assert (error.code, error.info.reason) == (
                grpc.StatusCode.NOT_FOUND,
                "COUNTER_NOT_FOUND",
            )
        with (
            connect(server.address, "ark_live_ent_" + "x" * 32) as stranger,
            pytest.raises(grpc.RpcError) as caught,
        ):
            stranger.counters.GetCounter(pb.GetCounterRequest(counter_type=INVOICE))
        error = rich_error(caught.value)
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "API_KEY_INVALID",
        )
    rpcs = [line for line in log_lines(server.stderr) if line.get("logger") == "service.rpc"]
    assert [(r["method"].rsplit("/", 1)[1], r["code"]) for r in rpcs] == [
        ("AdvanceCounter", "OK"),
        ("IssueNumbers", "OK"),
        ("GetCounter", "NOT_FOUND"),
        ("GetCounter", "UNAUTHENTICATED"),
    ]
    first = rpcs[0]
    with contextlib.closing(sqlite3.connect(tmp_path / "var" / "arcus.sqlite3")) as db:
        [(dev_key_id,)] = db.execute("SELECT id FROM api_keys").fetchall()
    assert first["entity"] == "dev" and first["key_id"] == dev_key_id
    assert first["level"] == "info"
    assert first["duration_ms"] >= 0 and first["peer"].startswith("ipv4:127.0.0.1:")
    assert rpcs[1]["idempotency_key"] == "retry-1"
    assert "entity" not in rpcs[3] or rpcs[3].get("entity") in (None, "")
    assert key not in server.stderr.read_text()


def test_metrics_are_scraped_over_http(database, keys):
    key = keys.create()
    with run_server(database, local_settings(metrics_listen="127.0.0.1:0")) as running:
        with connect(f"127.0.0.1:{running.port}", key) as arcus:
            arcus.counters.AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=5, prefix="I")
            )
            arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE, count=7))
            with pytest.raises(grpc.RpcError) as caught:
                arcus.counters.IssueNumbers(
                    pb.IssueNumbersRequest(counter_type=INVOICE, count=5000)
                )
            assert violations(rich_error(caught.value)) == {"count": "COUNT_OUT_OF_RANGE"}
        with urllib.request.urlopen(
            f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=10
        ) as reply:
            text = reply.read().decode()
    issue = 'method="/arcus.counters.v1.CounterService/IssueNumbers"'
    assert f'arcus_rpc_requests_total{{code="OK",{issue}}} 1.0' in text
    assert f'arcus_rpc_requests_total{{code="INVALID_ARGUMENT",{issue}}} 1.0' in text
    assert f"arcus_rpc_duration_seconds_count{{{issue}}} 2.0" in text
    assert 'arcus_counters_advanced_total{counter_type="invoice"} 1.0' in text
    assert 'arcus_numbers_issued_total{counter_type="invoice"} 7.0' in text
    assert "arcus_db_pool_size " in text and "arcus_db_pool_checked_out " in text


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, bytes]:
    """A throwaway CA, a server certificate for 127.0.0.1, and a client certificate."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=arcus-test-ca", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext",
                 cwd=d)  # fmt: skip
    return {p.name: p.read_bytes() for p in d.iterdir() if p.suffix in (".pem", ".key")}


def test_tls(database, keys, certificates):
    key = keys.create()
    tls = local_settings(tls_cert=certificates["server.pem"], tls_key=certificates["server.key"])
    with run_server(database, tls) as running:
        target = f"127.0.0.1:{running.port}"
        with connect(target, key, root_certificates=certificates["ca.pem"]) as arcus:
            created = arcus.counters.AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix="T")
            )
            assert created.counter.next_number == "T0000002"
        with connect(target, key) as plain, pytest.raises(grpc.RpcError) as caught:
            plain.counters.GetCounter(pb.GetCounterRequest(counter_type=INVOICE), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_with_client_certificates(database, keys, certificates):
    key = keys.create()
    tls = local_settings(
        tls_cert=certificates["server.pem"],
        tls_key=certificates["server.key"],
        tls_client_ca=certificates["ca.pem"],
    )
    with run_server(database, tls) as running:
        target = f"127.0.0.1:{running.port}"
        mine = (certificates["client.key"], certificates["client.pem"])
        with connect(target, key, certificates["ca.pem"], client_certificate=mine) as arcus:
            arcus.counters.AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix="T")
            )
        with (
            connect(target, key, certificates["ca.pem"]) as anonymous,
            pytest.raises(grpc.RpcError) as caught,
        ):
            anonymous.counters.GetCounter(pb.GetCounterRequest(counter_type=INVOICE), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_fail_fast(tmp_path):
    from tests.processes import cli

    result = cli(
        "serve", cwd=tmp_path, TLS_CERT_FILE=str(tmp_path / "missing.pem"), TLS_KEY_FILE="x"
    )
    assert result.returncode == 2
    assert "TLS_CERT_FILE" in result.stderr and "cannot read it" in result.stderr


def pool_checked_out(metrics: str) -> float:
    """The served process's database connections in use, from its /metrics."""
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("arcus_db_pool_checked_out "):
                return float(line.split()[1])
    raise AssertionError("no arcus_db_pool_checked_out in /metrics")


def test_sigterm_drains_health_then_finishes_calls_in_flight(tmp_path):
    metrics = f"127.0.0.1:{free_port()}"
    with served(tmp_path, GRPC_GRACE_SECONDS="20", METRICS_LISTEN=metrics) as server:
        key = (tmp_path / "var" / "dev-api-key").read_text().strip()
        # Hold SQLite's write lock so that a call is still in flight when SIGTERM comes.
        holder = sqlite3.connect(tmp_path / "var" / "arcus.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        channel = grpc.insecure_channel(server.address)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

        def in_flight() -> pb.AdvanceCounterResponse:
            with connect(server.address, key) as arcus:
                return arcus.counters.AdvanceCounter(
                    pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=9, prefix="I")
                )

        caller = Threads([in_flight], name="in-flight")
        # Until the call is in the server on a database connection, waiting for the lock
        # (it cannot finish before the ROLLBACK below; nothing else holds a connection
        # for more than an instant).
        wait_for(lambda: pool_checked_out(metrics) >= 1, 30, "the call on a connection")
        assert caller.done() == [False]
        server.process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING  # drained first
        watch.cancel()
        assert server.process.poll() is None  # still finishing the call in flight
        holder.execute("ROLLBACK")
        holder.close()
        [reply] = caller.results(timeout=30)
        assert reply.counter.next_number == "I0000010"  # it completed, not cut off
        assert server.process.wait(timeout=30) == 0
        channel.close()
    assert '"shutting down' in server.stderr.read_text()


def test_help_lists_every_command():
    from tests.processes import ROOT, service_env

    result = subprocess.run(
        [__import__("sys").executable, "-m", "service", "--help"],
        cwd=ROOT, env=service_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0
    for command in ("serve", "migrate", "keys", "entities", "idempotency"):
        assert command in result.stdout


def test_health_check_and_list_answer_anyone(channel, caplog):
    """Health/Check and Health/List (which reflection advertises) need no key, and List
    answers rather than failing with a logged traceback."""
    health = health_pb2_grpc.HealthStub(channel)
    check = health.Check(health_pb2.HealthCheckRequest(service="arcus.counters.v1.CounterService"))
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    listed = health.List(health_pb2.HealthListRequest())
    assert {name: s.status for name, s in listed.statuses.items()} == {
        "": health_pb2.HealthCheckResponse.SERVING,
        "arcus.counters.v1.CounterService": health_pb2.HealthCheckResponse.SERVING,
        "arcus.receivables.v1.AdvanceService": health_pb2.HealthCheckResponse.SERVING,
    }
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_every_advertised_method_called_without_a_key_logs_no_error(channel, caplog, proof):
    """What reflection advertises, called by anyone with an empty request: the service's
    methods answer UNAUTHENTICATED, health and reflection answer; nothing logs an ERROR."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    answers: dict[str, str] = {}
    for name in ProtoReflectionDescriptorDatabase(channel).get_services():
        for method in pool.FindServiceByName(name).methods:
            path = f"/{name}/{method.name}"
            try:
                if method.client_streaming:  # reflection itself: one empty question
                    replies = channel.stream_stream(path)(iter([b""]), timeout=5)
                    next(iter(replies))
                elif method.server_streaming:  # Health/Watch: its first status
                    replies = channel.unary_stream(path)(b"", timeout=5)
                    next(iter(replies))
                    replies.cancel()
                else:
                    channel.unary_unary(path)(b"", timeout=5)
                answers[path] = "OK"
            except grpc.RpcError as error:
                answers[path] = error.code().name
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    ours = {p: a for p, a in answers.items() if p.startswith("/arcus.")}
    assert set(ours.values()) == {"UNAUTHENTICATED"}
    assert set(ours) == {f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    others = {p: a for p, a in answers.items() if not p.startswith("/arcus.")}
    assert set(others.values()) == {"OK"}, others
    proof(f"{len(answers)} advertised methods called without a key: {len(ours)} of the "
          f"service UNAUTHENTICATED, {len(others)} of health and reflection answered; "
          "no ERROR logged")  # fmt: skip
