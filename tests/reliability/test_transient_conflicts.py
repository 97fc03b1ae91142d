"""Serialization failures and deadlocks are retried in the server, then ABORTED.

PostgreSQL raises them for real: a trigger on counters raises SQLSTATE 40001 or 40P01
for the first N attempts (counted by a sequence, which a rollback does not undo).
"""

import urllib.request

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from sqlalchemy import text

from service.auth.keys import Principal, Tenant
from service.auth.store import KeyStore
from service.counters.domain import AdvanceRequest
from service.counters.service import Counters
from service.db.failures import ATTEMPTS
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from service.server import run_server
from tests.advances import Client
from tests.errors import rich_error
from tests.support import auth, local_settings

INVOICE = pb.COUNTER_TYPE_INVOICE

# SQLSTATE 40001/40P01 are PostgreSQL's: these run on it alone.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@pytest.fixture
def faults(database):
    """inject(n, sqlstate): the next n updates of a counter fail with that SQLSTATE."""
    with database.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS inject_fault ON counters"))
        conn.execute(text("DROP SEQUENCE IF EXISTS fault_attempts"))
        conn.execute(text("CREATE SEQUENCE fault_attempts"))
        conn.execute(text("CREATE TABLE IF NOT EXISTS fault_plan (faults int, sqlstate text)"))
        conn.execute(text("DELETE FROM fault_plan"))
        conn.execute(
            text(
                """
                CREATE OR REPLACE FUNCTION inject_fault() RETURNS trigger AS $$
                DECLARE plan fault_plan;
                BEGIN
                  SELECT * INTO plan FROM fault_plan LIMIT 1;
                  IF plan IS NOT NULL AND nextval('fault_attempts') <= plan.faults THEN
                    RAISE EXCEPTION 'injected fault' USING ERRCODE = plan.sqlstate;
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER inject_fault BEFORE UPDATE ON counters "
                "FOR EACH ROW EXECUTE FUNCTION inject_fault()"
            )
        )

    def inject(count: int, sqlstate: str) -> None:
        with database.begin() as conn:
            conn.execute(text("DELETE FROM fault_plan"))
            conn.execute(
                text("INSERT INTO fault_plan VALUES (:n, :s)"), {"n": count, "s": sqlstate}
            )
            conn.execute(text("SELECT setval('fault_attempts', 1, false)"))

    def attempts() -> int:
        with database.connect() as conn:
            return conn.execute(text("SELECT last_value FROM fault_attempts")).scalar_one()

    inject.attempts = attempts  # type: ignore[attr-defined]
    yield inject
    with database.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS inject_fault ON counters"))
        conn.execute(text("DROP FUNCTION IF EXISTS inject_fault()"))
        conn.execute(text("DROP TABLE IF EXISTS fault_plan"))
        conn.execute(text("DROP SEQUENCE IF EXISTS fault_attempts"))


def current(counters, key) -> int:
    request = pb.GetCounterRequest(counter_type=INVOICE)
    return counters.GetCounter(request, metadata=auth(key)).current_value


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_few_conflicts_are_retried_invisibly_and_issue_once(
    counters, key, faults, sqlstate, proof
):
    create = pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=100, prefix="I")
    counters.AdvanceCounter(create, metadata=auth(key))
    faults(ATTEMPTS - 1, sqlstate)
    issued = counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key))
    assert issued.first_value == 101
    assert current(counters, key) == 101  # four rolled-back attempts issued nothing
    assert faults.attempts() == ATTEMPTS
    proof(f"{ATTEMPTS - 1} injected {sqlstate} faults retried, one number issued")


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_persistent_conflicts_end_in_aborted_and_change_nothing(
    counters, key, faults, sqlstate, proof
):
    create = pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=100, prefix="I")
    counters.AdvanceCounter(create, metadata=auth(key))
    faults(1000, sqlstate)
    with pytest.raises(grpc.RpcError) as caught:
        counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key))
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (grpc.StatusCode.ABORTED, "TRANSIENT_CONFLICT")
    assert error.info.metadata["sqlstate"] == sqlstate
    faults(0, sqlstate)
    assert current(counters, key) == 100
    proof(f"{ATTEMPTS} attempts, then ABORTED; the counter stayed at 100")


def test_batch_items_and_keyed_calls_are_retried_too(counters, key, faults, proof):
    create = pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix="I")
    counters.AdvanceCounter(create, metadata=auth(key))
    faults(2, "40P01")
    batch = pb.BatchAdvanceCountersRequest(
        counters=[pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=50)]
    )
    [result] = counters.BatchAdvanceCounters(batch, metadata=auth(key)).results
    assert result.status.code == 0 and result.response.counter.current_value == 50
    faults(2, "40001")
    keyed = (*auth(key), ("idempotency-key", "k"))
    first = counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=keyed)
    again = counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=keyed)
    assert first == again and first.first_value == 51
    assert current(counters, key) == 51


def test_the_unit_of_work_retries_for_every_caller_not_only_rpcs(database, faults, proof):
    """A use case run outside gRPC (a CLI command, the sweep) gets the same retries: they
    belong to the unit of work that opens the transaction."""
    uow = UnitOfWork(database)
    counters = Counters(uow, PageTokens(b"unused"))
    record, _ = KeyStore(uow).create("acme", "live", ["counters:write"])
    principal = Principal(record.id, Tenant("acme", "live"), frozenset(record.scopes))
    counters.advance(principal, AdvanceRequest("invoice", 100, "I", None))
    faults(ATTEMPTS - 1, "40001")
    assert counters.issue(principal, "invoice", 1).first_value == 101
    assert faults.attempts() == ATTEMPTS
    proof(f"{ATTEMPTS - 1} conflicts met outside any RPC: retried by the unit of work")


def test_numbers_issued_are_counted_once_per_committed_effect(database, key, faults):
    """A call retried after conflicts counts its numbers once; numbers CreateAdvance
    takes from the AR advance counter count too."""
    with run_server(database, local_settings(metrics_listen="127.0.0.1:0")) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            counters = counters_pb2_grpc.CounterServiceStub(channel)
            for kind in (INVOICE, pb.COUNTER_TYPE_AR_ADVANCE):
                counters.AdvanceCounter(
                    pb.AdvanceCounterRequest(counter_type=kind, advance_to=1, prefix="I"),
                    metadata=auth(key),
                )
            faults(2, "40001")  # the IssueNumbers below runs three times, commits once
            counters.IssueNumbers(
                pb.IssueNumbersRequest(counter_type=INVOICE, count=3), metadata=auth(key)
            )
            faults(0, "40001")
            Client(channel, key).create()
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text_ = reply.read().decode()
    assert 'arcus_numbers_issued_total{counter_type="invoice"} 3.0' in text_
    assert 'arcus_numbers_issued_total{counter_type="ar_advance"} 1.0' in text_
    assert 'arcus_counters_advanced_total{counter_type="invoice"} 1.0' in text_
