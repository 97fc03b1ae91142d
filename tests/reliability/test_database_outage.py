"""PostgreSQL goes away under a running server and comes back: calls fail fast with
UNAVAILABLE meanwhile, and the same process serves again within seconds."""

import time

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb

from service.auth.store import KeyStore
from service.client import connect
from service.db.engine import IDLE_BEFORE_PING, make_engine
from service.db.migrate import upgrade
from service.db.uow import UnitOfWork
from service.server import all_scopes, run_server
from tests import postgres
from tests.errors import rich_error
from tests.support import local_settings
from tests.tools import missing

INVOICE = pb.COUNTER_TYPE_INVOICE


@pytest.fixture
def cluster():
    bin_dir = postgres.find_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL server binaries not found")
    own = postgres.start_cluster(bin_dir)  # its own: this test stops it
    yield own
    own.stop()


def test_an_outage_fails_fast_with_unavailable_and_recovery_is_automatic(cluster, proof):
    engine = make_engine(cluster.url, pool_size=4)
    upgrade(engine)
    _, key = KeyStore(UnitOfWork(engine)).create("acme", "live", sorted(all_scopes()))
    issue = pb.IssueNumbersRequest(counter_type=INVOICE)
    with (
        run_server(engine, local_settings()) as running,
        connect(f"127.0.0.1:{running.port}", key) as arcus,
    ):
        arcus.counters.AdvanceCounter(
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=0, prefix="I")
        )
        for _ in range(8):  # fill the pool with connections that the outage will kill
            arcus.counters.IssueNumbers(issue)

        cluster.pause()
        failures = []
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                arcus.counters.IssueNumbers(issue, timeout=30)
            failures.append((rich_error(caught.value), time.monotonic() - started))
        assert {(e.code, e.info.reason) for e, _ in failures} == {
            (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE")
        }
        slowest = max(seconds for _, seconds in failures)
        assert slowest < 5  # fails fast: no hang

        cluster.resume()
        back_at = time.monotonic()
        while True:
            try:
                reply = arcus.counters.IssueNumbers(issue, timeout=5)
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() - back_at < 5, (
                    "not serving 5 s after the database came back"
                )
                time.sleep(0.1)
        recovered = time.monotonic() - back_at
        assert reply.first_value == 9  # nothing issued while down, nothing lost

        # A restart while the server is idle: pooled connections idle past
        # IDLE_BEFORE_PING are checked before use, so not even the next call fails.
        cluster.pause()
        cluster.resume()
        time.sleep(IDLE_BEFORE_PING)
        assert arcus.counters.IssueNumbers(issue, timeout=5).first_value == 10
    engine.dispose()
    proof(
        f"5 calls during the outage failed with UNAVAILABLE in at most {slowest:.2f}s; "
        f"served again {recovered:.2f}s after PostgreSQL returned; numbers continued at 9; "
        "after a restart while idle the very next call succeeded"
    )
