"""A database that stops answering (frozen, or its traffic dropped) makes health
NOT_SERVING and calls UNAVAILABLE within stated bounds; a call with a deadline stops
waiting at its deadline; when the database answers again, so does the service.

(With only connect and pool timeouts, a call without a deadline hung for as long as the
database was gone, and health kept saying SERVING.)"""

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, select

from service.auth.store import KeyStore
from service.client import Arcus, connect
from service.db import models
from service.db.engine import CONNECT_TIMEOUT, make_engine
from service.db.migrate import upgrade
from service.db.uow import UnitOfWork
from service.server import all_scopes, run_server
from tests import postgres
from tests.errors import rich_error
from tests.support import local_settings
from tests.tools import missing

INVOICE = pb.COUNTER_TYPE_INVOICE
DATABASE_TIMEOUT = 2.0  # the server's DATABASE_TIMEOUT_SECONDS here
PROBE_EVERY, PROBE_TIMEOUT = 0.5, 1.0
# The stated bounds (README, "Limits"): health within a probe and its timeout; a call
# within DATABASE_TIMEOUT_SECONDS plus, should it need a new connection, the connect timeout.
# A probe that needs a new connection waits for it up to 2 s (libpq's least connect timeout).
HEALTH_BOUND = PROBE_EVERY + max(PROBE_TIMEOUT, 2.0) + 1.0  # +1 s: resolution and noise
CALL_BOUND = DATABASE_TIMEOUT + CONNECT_TIMEOUT + 1.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def cluster() -> Iterator[postgres.Cluster]:
    bin_dir = postgres.find_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL server binaries not found")
    own = postgres.start_cluster(bin_dir)  # its own: this test freezes it
    yield own
    thaw(own)
    own.stop()


def cluster_pids(cluster: postgres.Cluster) -> list[int]:
    """The postmaster, then its children (its backends and helpers)."""
    postmaster = int((cluster.directory / "data" / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def signal_all(cluster: postgres.Cluster, signum: int) -> None:
    for pid in cluster_pids(cluster):  # the postmaster first: it forks no more backends
        with contextlib.suppress(ProcessLookupError):  # a backend that ended meanwhile
            os.kill(pid, signum)


def freeze(cluster: postgres.Cluster) -> None:
    signal_all(cluster, signal.SIGSTOP)


def thaw(cluster: postgres.Cluster) -> None:
    signal_all(cluster, signal.SIGCONT)


@contextmanager
def dropped_traffic(port: int) -> Iterator[None]:
    """Every packet to the database's port dropped, as a dead network does: no reset, no
    answer."""
    iptables = shutil.which("iptables")
    if iptables is None:
        missing("iptables is not installed (CI installs it)")
    rule = ["INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP"]
    subprocess.run([iptables, "-I", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([iptables, "-D", *rule], check=True, capture_output=True)


@contextmanager
def serving(cluster: postgres.Cluster) -> Iterator[tuple[Engine, Arcus, Callable[[], int]]]:
    engine = make_engine(cluster.url, pool_size=8, timeout=DATABASE_TIMEOUT)
    upgrade(engine)
    _, key = KeyStore(UnitOfWork(engine)).create("acme", "live", sorted(all_scopes()))
    options = local_settings(
        health_probe_seconds=PROBE_EVERY, health_probe_timeout_seconds=PROBE_TIMEOUT
    )
    with run_server(engine, options) as running, connect(f"127.0.0.1:{running.port}", key) as arcus:
        health = health_pb2_grpc.HealthStub(arcus.channel)
        arcus.counters.AdvanceCounter(
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=0, prefix="I")
        )
        for _ in range(8):  # pooled connections, which the outage will catch
            arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE))
        yield engine, arcus, lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
    engine.dispose()


def seconds_until(condition: Callable[[], bool], limit: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            pytest.fail(f"not within {limit}s")
        time.sleep(0.05)
    return time.monotonic() - started


def unavailable_within_bound(arcus: Arcus, calls: int = 4) -> float:
    """`calls` concurrent IssueNumbers without a deadline: each UNAVAILABLE within
    CALL_BOUND; the slowest's seconds."""

    def one() -> float:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE))
        error = rich_error(caught.value)
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
        )
        return time.monotonic() - started

    with ThreadPoolExecutor(calls) as pool:
        slowest = max(f.result(timeout=60) for f in [pool.submit(one) for _ in range(calls)])
    assert slowest <= CALL_BOUND, f"a call took {slowest:.1f}s, bound {CALL_BOUND}s"
    return slowest


def a_deadline_is_kept(arcus: Arcus, caplog: pytest.LogCaptureFixture) -> float:
    """A call with a 0.5 s deadline: the server lets go of the database at that deadline,
    not at its own later bound. Its log line of the call says how long the handler held
    on (CANCELLED if its caller had left by then; UNAVAILABLE if it answered just before,
    and so the caller hears that instead of DEADLINE_EXCEEDED)."""
    caplog.set_level(logging.INFO, logger="service.rpc")
    logged = lambda: [r for r in caplog.records if r.name == "service.rpc"]  # noqa: E731
    before = len(logged())
    with pytest.raises(grpc.RpcError) as caught:
        arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), timeout=0.5)
    assert caught.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    seconds_until(lambda: len(logged()) > before, limit=2 * CALL_BOUND)
    [record] = logged()[before:]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["code"] in ("CANCELLED", "UNAVAILABLE")
    held = fields["duration_ms"] / 1000
    assert held < DATABASE_TIMEOUT  # the caller's deadline, not the server's own bound
    return held


def recovered(arcus: Arcus, health: Callable[[], int]) -> float:
    back = seconds_until(lambda: health() == SERVING, limit=HEALTH_BOUND + CALL_BOUND)
    arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), timeout=10)
    return back


def issued_contiguously(engine: Engine) -> int:
    """The audit trail of issues: contiguous, nothing twice. How many numbers."""
    with engine.connect() as conn:
        ranges = conn.execute(
            select(models.CounterEvent.old_value, models.CounterEvent.new_value)
            .where(models.CounterEvent.action == "issue")
            .order_by(models.CounterEvent.old_value)
        ).all()
    expected = 0
    for old, new in ranges:
        assert old == expected, f"gap or overlap at {old}"
        expected = new
    return expected


def test_a_frozen_database_turns_health_not_serving_and_calls_unavailable(cluster, caplog, proof):
    with serving(cluster) as (engine, arcus, health):
        freeze(cluster)
        try:
            let_go = a_deadline_is_kept(arcus, caplog)  # first, while its connection is pooled
            to_not_serving = seconds_until(lambda: health() == NOT_SERVING, limit=HEALTH_BOUND)
            slowest = unavailable_within_bound(arcus)
        finally:
            thaw(cluster)
        back = recovered(arcus, health)
        issued = issued_contiguously(engine)
    proof(
        f"PostgreSQL frozen (SIGSTOP): NOT_SERVING after {to_not_serving:.1f}s (bound "
        f"{HEALTH_BOUND}s); 4 calls without a deadline UNAVAILABLE in at most {slowest:.1f}s "
        f"(bound {CALL_BOUND}s); a call with a 0.5 s deadline let go of the database after "
        f"{let_go:.1f}s; SERVING {back:.1f}s after thawing; "
        f"{issued} numbers in the audit trail, contiguous"
    )


def test_dropped_database_traffic_turns_health_not_serving_and_calls_unavailable(
    cluster, caplog, proof
):
    port = int(cluster.url.rsplit(":", 1)[1].split("/")[0])
    with serving(cluster) as (engine, arcus, health):
        with dropped_traffic(port):
            a_deadline_is_kept(arcus, caplog)
            to_not_serving = seconds_until(lambda: health() == NOT_SERVING, limit=HEALTH_BOUND)
            slowest = unavailable_within_bound(arcus)
        back = recovered(arcus, health)
        issued = issued_contiguously(engine)
    proof(
        f"PostgreSQL's traffic dropped (iptables DROP): NOT_SERVING after {to_not_serving:.1f}s; "
        f"calls without a deadline UNAVAILABLE in at most {slowest:.1f}s (bound {CALL_BOUND}s); "
        f"SERVING {back:.1f}s after the network returned; {issued} numbers, contiguous"
    )


def test_a_database_wait_without_a_deadline_ends_at_the_servers_bound(cluster, proof):
    """A row lock held elsewhere (the database answers, but not for us): the call ends at
    DATABASE_TIMEOUT_SECONDS, UNAVAILABLE, and its connection is not kept waiting."""
    unbounded = make_engine(cluster.url, pool_size=1)  # the blocker's own: no server timeouts
    with serving(cluster) as (_, arcus, _health), unbounded.connect() as blocker:
        held = blocker.begin()
        blocker.execute(select(models.Counter).with_for_update())
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE))
        waited = time.monotonic() - started
        held.rollback()
        assert rich_error(caught.value).code == grpc.StatusCode.UNAVAILABLE
        assert waited <= DATABASE_TIMEOUT + 1.0
        arcus.counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), timeout=10)
    unbounded.dispose()
    proof(
        f"a call waiting on a lock held elsewhere ended after {waited:.1f}s "
        f"(bound {DATABASE_TIMEOUT}s)"
    )
