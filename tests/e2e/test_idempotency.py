"""Idempotency keys on every mutating RPC: replay, reuse, races, expiry, isolation."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as apb
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import Engine, event, func, select, text

from service.db import models
from service.db.models import Base
from service.db.uow import UnitOfWork
from service.idempotency.store import Idempotency
from service.server import run_server
from tests.advances import Client, advance_message, payload
from tests.errors import rich_error
from tests.processes import cli
from tests.support import auth, local_settings
from tests.tools import Threads, violations, wait_for

COUNTERS = "/arcus.counters.v1.CounterService/"
ADVANCES = "/arcus.receivables.v1.AdvanceService/"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def server(database, clock):  # the conftest server, on a clock the test moves
    with run_server(database, local_settings(), clock=clock) as running:
        yield running


def raw_call(channel, method, request, key, idempotency_key=None):
    """The response's bytes as they came over the wire, and whether it was a replay."""
    call = channel.unary_unary(method)  # no deserializer: bytes in, bytes out
    metadata = auth(key) + ((("idempotency-key", idempotency_key),) if idempotency_key else ())
    response, rpc = call.with_call(request.SerializeToString(), metadata=metadata)
    replayed = dict(rpc.initial_metadata()).get("idempotent-replayed") == "true"
    return response, replayed


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table but the idempotency records themselves."""
    with engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name != "idempotency_records"
        }


def records(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(models.IdempotencyRecord)).scalar_one()


@pytest.fixture
def world(channel, key):
    """An AR advance counter, an invoice counter, a journal counter that has issued
    J-0000001, and advances in the states the RPCs need."""
    client = Client(channel, key)
    invoice = cpb.AdvanceCounterRequest(
        counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=10, prefix="INV-"
    )
    raw_call(channel, COUNTERS + "AdvanceCounter", invoice, key)
    journal = cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_JOURNAL, prefix="J-")
    raw_call(channel, COUNTERS + "AdvanceCounter", journal, key)
    first = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_JOURNAL)  # for VoidNumbers
    raw_call(channel, COUNTERS + "IssueNumbers", first, key)
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    posted = client.create()
    applied = client.create()
    client.apply(applied.key, "10", "INV-A")
    return {"draft": draft.key, "posted": posted.key, "applied": applied.key}


def mutating_calls(world):
    return {
        "AdvanceCounter": (
            COUNTERS + "AdvanceCounter",
            cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_PO, advance_to=5, prefix="PO-"),
        ),
        "BatchAdvanceCounters": (
            COUNTERS + "BatchAdvanceCounters",
            cpb.BatchAdvanceCountersRequest(
                counters=[
                    cpb.AdvanceCounterRequest(
                        counter_type=cpb.COUNTER_TYPE_QUOTE, advance_to=3, prefix="Q-"
                    ),
                    cpb.AdvanceCounterRequest(
                        counter_type=cpb.COUNTER_TYPE_RMA, advance_to=3
                    ),  # fails alone
                ]
            ),
        ),
        "IssueNumbers": (
            COUNTERS + "IssueNumbers",
            cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=3),
        ),
        "VoidNumbers": (
            COUNTERS + "VoidNumbers",
            cpb.VoidNumbersRequest(
                counter_type=cpb.COUNTER_TYPE_JOURNAL,
                first_value=1,
                last_value=1,
                reason="the document failed",
            ),
        ),
        "UpdateCounter": (
            COUNTERS + "UpdateCounter",
            cpb.UpdateCounterRequest(
                counter=cpb.Counter(counter_type=cpb.COUNTER_TYPE_INVOICE, suffix="-{YY}"),
                update_mask=FieldMask(paths=["suffix"]),
            ),
        ),
        "CreateAdvance": (
            ADVANCES + "CreateAdvance",
            apb.CreateAdvanceRequest(advance=advance_message(payload())),
        ),
        "BatchCreateAdvances": (
            ADVANCES + "BatchCreateAdvances",
            apb.BatchCreateAdvancesRequest(
                requests=[
                    apb.CreateAdvanceRequest(advance=advance_message(payload())),
                    apb.CreateAdvanceRequest(advance=apb.Advance()),  # fails alone
                ]
            ),
        ),
        "UpdateAdvance": (
            ADVANCES + "UpdateAdvance",
            apb.UpdateAdvanceRequest(
                advance=apb.Advance(key=world["posted"], description="changed"),
                update_mask=FieldMask(paths=["description"]),
            ),
        ),
        "DeleteAdvance": (
            ADVANCES + "DeleteAdvance",
            apb.DeleteAdvanceRequest(key=world["posted"]),
        ),
        "SubmitAdvance": (ADVANCES + "SubmitAdvance", apb.SubmitAdvanceRequest(key=world["draft"])),
        "ReverseAdvance": (
            ADVANCES + "ReverseAdvance",
            apb.ReverseAdvanceRequest(key=world["posted"], reversed_date="2024-06-20"),
        ),
        "ApplyAdvance": (
            ADVANCES + "ApplyAdvance",
            apb.ApplyAdvanceRequest(
                key=world["posted"], invoice_number="INV-B", amount="5", applied_date="2024-06-20"
            ),
        ),
        "UnapplyAdvance": (
            ADVANCES + "UnapplyAdvance",
            apb.UnapplyAdvanceRequest(key=world["applied"], invoice_number="INV-A"),
        ),
    }


MUTATING = [
    "AdvanceCounter", "BatchAdvanceCounters", "IssueNumbers", "UpdateCounter", "VoidNumbers",
    "CreateAdvance", "BatchCreateAdvances", "UpdateAdvance",
    "DeleteAdvance", "SubmitAdvance", "ReverseAdvance", "ApplyAdvance", "UnapplyAdvance",
]  # fmt: skip


# How the RPCs that cannot run twice fail when sent again without the key; the others run.
AGAIN_WITHOUT_A_KEY = {
    "VoidNumbers": (grpc.StatusCode.FAILED_PRECONDITION, "NUMBER_ALREADY_VOIDED"),
    "DeleteAdvance": (grpc.StatusCode.NOT_FOUND, "ADVANCE_NOT_FOUND"),
    "SubmitAdvance": (grpc.StatusCode.FAILED_PRECONDITION, "ADVANCE_NOT_DRAFT"),
    "ReverseAdvance": (grpc.StatusCode.FAILED_PRECONDITION, "ADVANCE_REVERSED"),
    "UnapplyAdvance": (grpc.StatusCode.FAILED_PRECONDITION, "NOT_APPLIED_TO_INVOICE"),
}


@pytest.mark.parametrize("rpc", MUTATING)
def test_a_replay_returns_the_same_bytes_and_changes_nothing(channel, key, database, world, rpc):
    method, request = mutating_calls(world)[rpc]
    first, replayed = raw_call(channel, method, request, key, "k-1")
    assert not replayed
    after_first = snapshot(database)
    for _ in range(2):
        again, replayed = raw_call(channel, method, request, key, "k-1")
        assert replayed
        assert again == first  # byte-identical
    assert snapshot(database) == after_first  # counters, rows and audit trail untouched
    # Without the key the same request runs again (or fails: the first already ran).
    try:
        _, replayed = raw_call(channel, method, request, key)
        assert not replayed
        outcome = (grpc.StatusCode.OK, "")
    except grpc.RpcError as caught:
        error = rich_error(caught)
        outcome = (error.code, error.info.reason)
    assert outcome == AGAIN_WITHOUT_A_KEY.get(rpc, (grpc.StatusCode.OK, ""))


def test_every_mutating_rpc_is_covered_and_reads_are_not():
    from service.rpc.methods import mutating_methods
    from service.server import SERVICES

    assert {m.rsplit("/", 1)[1] for m in mutating_methods(SERVICES)} == set(MUTATING)


def test_32_racing_callers_with_one_key_get_one_block_of_numbers(server, key, database):
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target) as channel:
        raw_call(
            channel,
            COUNTERS + "AdvanceCounter",
            cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=100, prefix="INV-"
            ),
            key,
        )
    barrier = threading.Barrier(32)
    request = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=10)

    def issue(_):
        with grpc.insecure_channel(target) as channel:
            barrier.wait()
            return raw_call(channel, COUNTERS + "IssueNumbers", request, key, "same-key")

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(issue, range(32)))
    assert len({response for response, _ in results}) == 1  # everyone got the same numbers
    assert sum(not replayed for _, replayed in results) == 1
    numbers = cpb.IssueNumbersResponse.FromString(results[0][0])
    assert (numbers.first_value, numbers.last_value) == (101, 110)
    with database.connect() as conn:
        assert conn.execute(select(models.Counter.current_value)).scalar_one() == 110
        assert (
            conn.execute(
                select(func.count()).where(models.CounterEvent.action == "issue")
            ).scalar_one()
            == 1
        )


@contextmanager
def executing(engine: Engine) -> Iterator[dict[int, str]]:
    """The statements being executed on `engine` right now, by thread."""
    running: dict[int, str] = {}

    def before(conn, cursor, statement, *args) -> None:
        running[threading.get_ident()] = statement

    def after(*args) -> None:
        running.pop(threading.get_ident(), None)

    listeners = [("before_cursor_execute", before), ("after_cursor_execute", after),
                 ("handle_error", after)]  # fmt: skip
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield running
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


def invoices_at_seven(server, key) -> str:
    """The server's address, its invoice counter made and advanced to 7."""
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target) as channel:
        raw_call(
            channel,
            COUNTERS + "AdvanceCounter",
            cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=7, prefix="I"
            ),
            key,
        )
    return target


def test_a_call_still_in_flight_is_waited_for_then_replayed(server, key, database):
    target = invoices_at_seven(server, key)
    request = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=2)
    # Hold the counter's row (PostgreSQL) or the write lock (SQLite) so that the first
    # call cannot finish; the second arrives while it is in flight.
    with (
        executing(database) as statements,
        database.connect() as blocker,
        grpc.insecure_channel(target) as channel,
    ):
        held = blocker.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
        blocker.execute(select(models.Counter).with_for_update())  # PostgreSQL: the row

        def waiting_for_locks() -> int:
            if database.dialect.name == "postgresql":
                # The first call on the counter's row, the second on the first's key.
                waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                return blocker.execute(waiting).scalar_one()
            # SQLite: a writer waits for the write lock inside BEGIN IMMEDIATE.
            return list(statements.values()).count("BEGIN IMMEDIATE")

        def issue() -> tuple[tuple[bytes, bool], float]:
            result = raw_call(channel, COUNTERS + "IssueNumbers", request, key, "slow")
            return result, time.monotonic()

        calls = Threads([issue, issue], name="slow")
        # Both calls are in the server, each on a database connection of its own (the
        # server shares this engine) and waiting for a lock: neither can finish.
        wait_for(
            lambda: waiting_for_locks() == 2 and database.pool.checkedout() == 1 + 2,
            30,
            "both calls waiting in the database, beside the blocker",
        )
        assert calls.done() == [False, False]
        releasing_at = time.monotonic()
        held.commit()
        results = calls.results(timeout=30)
    assert all(finished > releasing_at for _, finished in results)  # both waited for it
    (first, first_replayed), (second, second_replayed) = (result for result, _ in results)
    assert first == second
    assert sorted([first_replayed, second_replayed]) == [False, True]  # exactly one replayed
    with database.connect() as conn:
        assert conn.execute(select(models.Counter.current_value)).scalar_one() == 9  # issued once
        issues = select(func.count()).where(models.CounterEvent.action == "issue")
        assert conn.execute(issues).scalar_one() == 1


def test_the_same_key_with_another_request_is_refused(channel, key, database, world):
    method, request = mutating_calls(world)["IssueNumbers"]
    raw_call(channel, method, request, key, "k-2")
    before = snapshot(database)
    other = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=4)
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(channel, method, other, key, "k-2")
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert snapshot(database) == before


def test_keys_are_scoped_to_the_rpc_the_entity_and_the_mode(channel, keys, database):
    for entity, mode in [("acme", "live"), ("acme", "test"), ("globex", "live")]:
        key = keys.create(entity, mode=mode)
        raw_call(
            channel,
            COUNTERS + "AdvanceCounter",
            cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=1, prefix="I"
            ),
            key,
            "shared",
        )
        issued, replayed = raw_call(
            channel,
            COUNTERS + "IssueNumbers",
            cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE),
            key,
            "shared",
        )
        assert not replayed  # a different RPC with the same key is a different key
        assert list(cpb.IssueNumbersResponse.FromString(issued).numbers) == ["I0000002"]
    assert records(database) == 6


def test_a_failed_call_stores_nothing_so_a_corrected_retry_runs(channel, key, database, world):
    method = COUNTERS + "IssueNumbers"
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(
            channel,
            method,
            cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=5000),
            key,
            "k-3",
        )
    assert violations(rich_error(caught.value)) == {"count": "COUNT_OUT_OF_RANGE"}
    with pytest.raises(grpc.RpcError) as caught:  # a business-rule failure: no such counter
        raw_call(
            channel,
            method,
            cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_LEASE),
            key,
            "k-3",
        )
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
    assert records(database) == 0
    issued, replayed = raw_call(
        channel,
        method,
        cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=5),
        key,
        "k-3",
    )
    assert not replayed and cpb.IssueNumbersResponse.FromString(issued).first_value == 11


def test_after_24_hours_a_key_is_new_again(channel, key, database, world, clock):
    method, request = mutating_calls(world)["IssueNumbers"]
    first, _ = raw_call(channel, method, request, key, "k-4")
    clock.now += timedelta(hours=23, minutes=59)
    assert raw_call(channel, method, request, key, "k-4") == (first, True)
    clock.now += timedelta(minutes=2)
    again, replayed = raw_call(channel, method, request, key, "k-4")
    assert not replayed and again != first  # ran again: new numbers
    clock.now += timedelta(hours=25)
    other = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=1)
    assert raw_call(channel, method, other, key, "k-4")[1] is False  # not "reused" either


def test_a_record_is_live_until_exactly_24_hours(channel, key, database, world, clock):
    """Live while younger than 24 hours: replayed a microsecond before, new again at 24 h."""
    method, request = mutating_calls(world)["IssueNumbers"]
    created = clock.now
    first, replayed = raw_call(channel, method, request, key, "k-edge")
    assert not replayed
    clock.now = created + timedelta(hours=24) - timedelta(microseconds=1)
    assert raw_call(channel, method, request, key, "k-edge") == (first, True)
    clock.now = created + timedelta(hours=24)
    again, replayed = raw_call(channel, method, request, key, "k-edge")
    assert not replayed and again != first  # ran anew: new numbers
    assert raw_call(channel, method, request, key, "k-edge") == (again, True)  # its own record


@contextmanager
def records_read(engine: Engine) -> Iterator[list[str]]:
    """The statements run on idempotency records meanwhile."""
    seen: list[str] = []

    def before(conn, cursor, statement, *args) -> None:
        if "idempotency_records" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_a_retry_storm_is_answered_from_memory_for_a_minute(channel, key, database, world, clock):
    """A finished record read once answers the replays of the next minute without the
    database, the same bytes; a reused key is still refused; then it is read again."""
    method, request = mutating_calls(world)["IssueNumbers"]
    first, replayed = raw_call(channel, method, request, key, "k-storm")
    assert not replayed
    with records_read(database) as seen:
        assert raw_call(channel, method, request, key, "k-storm") == (first, True)
    assert len(seen) == 1  # read from the database once
    with records_read(database) as seen:
        for _ in range(20):
            assert raw_call(channel, method, request, key, "k-storm") == (first, True)
        other = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=9)
        with pytest.raises(grpc.RpcError) as caught:
            raw_call(channel, method, other, key, "k-storm")
        assert rich_error(caught.value).info.reason == "IDEMPOTENCY_KEY_REUSED"
    assert seen == []  # twenty replays and a refusal, from memory
    clock.now += timedelta(seconds=61)
    with records_read(database) as seen:
        assert raw_call(channel, method, request, key, "k-storm") == (first, True)
    assert len(seen) == 1  # the minute is over: read again


def test_large_responses_and_records_near_expiry_are_always_read(
    channel, key, database, world, clock
):
    """Only small responses are kept in memory, and never within a minute of the record's
    expiry: after it, the key runs anew (other replicas' clocks may differ a little)."""
    method, _ = mutating_calls(world)["BatchAdvanceCounters"]
    large = cpb.BatchAdvanceCountersRequest(
        counters=[
            cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_QUOTE,
                advance_to=i,
                prefix="QUOTE-FROM-LEGACY-",
                series=f"MIGRATED-SERIES-{i:02d}",
            )
            for i in range(1, 51)
        ]
    )
    response, _ = raw_call(channel, method, large, key, "k-large")
    assert len(response) > 4096
    for _ in range(3):
        with records_read(database) as seen:
            assert raw_call(channel, method, large, key, "k-large") == (response, True)
        assert len(seen) == 1
    method, request = mutating_calls(world)["IssueNumbers"]
    created = clock.now
    first, _ = raw_call(channel, method, request, key, "k-late")
    clock.now = created + timedelta(hours=23, minutes=59, seconds=30)
    for _ in range(2):
        with records_read(database) as seen:
            assert raw_call(channel, method, request, key, "k-late") == (first, True)
        assert len(seen) == 1  # within a minute of expiry: read each time
    clock.now = created + timedelta(hours=24)
    again, replayed = raw_call(channel, method, request, key, "k-late")
    assert not replayed and again != first


def test_purge_deletes_in_batches(channel, key, database, world, clock, monkeypatch):
    from service.idempotency import store

    monkeypatch.setattr(store, "PURGE_BATCH", 2)
    method, request = mutating_calls(world)["IssueNumbers"]
    assert records(database) == 0
    for n in range(5):
        raw_call(channel, method, request, key, f"old-{n}")
    clock.now += timedelta(hours=24)
    raw_call(channel, method, request, key, "live")
    deletes = []

    def count_deletes(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM IDEMPOTENCY_RECORDS"):
            deletes.append(statement)

    event.listen(database, "before_cursor_execute", count_deletes)
    try:
        assert Idempotency(UnitOfWork(database), clock).purge() == 5
    finally:
        event.remove(database, "before_cursor_execute", count_deletes)
    assert len(deletes) == 3  # 2 + 2 + 1: a batch short of PURGE_BATCH is the last
    assert records(database) == 1
    assert raw_call(channel, method, request, key, "live")[1] is True  # the live one stayed
    assert raw_call(channel, method, request, key, "old-0")[1] is False  # purged: new again


def test_purge_deletes_only_expired_records(channel, key, database, world, clock):
    method, request = mutating_calls(world)["IssueNumbers"]
    raw_call(channel, method, request, key, "old")
    clock.now += timedelta(hours=20)
    raw_call(channel, method, request, key, "young")
    clock.now += timedelta(hours=5)
    assert Idempotency(UnitOfWork(database), clock).purge() == 1
    assert records(database) == 1
    assert raw_call(channel, method, request, key, "old")[1] is False  # purged: new again
    assert raw_call(channel, method, request, key, "young")[1] is True


def test_the_cli_purges_and_the_server_sweeps(database, key, tmp_path):
    url = database.url.render_as_string(hide_password=False)
    clock = FakeClock(datetime.now(UTC) - timedelta(hours=30))  # records made 30 hours ago
    with (
        run_server(
            database, local_settings(idempotency_sweep_seconds=3600), clock=clock
        ) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        for k in ("a", "b"):
            raw_call(
                channel,
                COUNTERS + "AdvanceCounter",
                cpb.AdvanceCounterRequest(
                    counter_type=cpb.COUNTER_TYPE_PO, advance_to=1, prefix="P"
                ),
                key,
                k,
            )
    result = cli("idempotency", "purge", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "purged 2 idempotency records" in result.stdout
    with (
        run_server(
            database, local_settings(idempotency_sweep_seconds=0.05), clock=clock
        ) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        raw_call(
            channel,
            COUNTERS + "AdvanceCounter",
            cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_PO, advance_to=1, prefix="P"),
            key,
            "c",
        )
        assert records(database) == 1
        clock.now += timedelta(hours=24)
        deadline = time.monotonic() + 10
        while records(database) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert records(database) == 0


@pytest.mark.parametrize("bad", ["", "k" * 256])
def test_bad_keys_are_invalid_argument_before_anything_runs(channel, key, database, world, bad):
    method, request = mutating_calls(world)["IssueNumbers"]
    before = snapshot(database)
    call = channel.unary_unary(method)
    with pytest.raises(grpc.RpcError) as caught:
        call(request.SerializeToString(), metadata=(*auth(key), ("idempotency-key", bad)))
    assert violations(rich_error(caught.value)) == {"idempotency-key": "IDEMPOTENCY_KEY_INVALID"}
    assert records(database) == 0
    assert snapshot(database) == before


def test_a_key_on_a_read_is_ignored(channel, key, database, world):
    request = cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_INVOICE)
    for _ in range(2):
        _, replayed = raw_call(channel, COUNTERS + "GetCounter", request, key, "read")
        assert not replayed
    assert records(database) == 0


def test_keyed_batches_in_opposite_orders_never_deadlock(server, key, database):
    target = f"127.0.0.1:{server.port}"
    kinds = [
        cpb.COUNTER_TYPE_ORDER,
        cpb.COUNTER_TYPE_PO,
        cpb.COUNTER_TYPE_QUOTE,
        cpb.COUNTER_TYPE_INVOICE,
    ]
    barrier = threading.Barrier(12)

    def batch(index):
        order = kinds if index % 2 else list(reversed(kinds))
        request = cpb.BatchAdvanceCountersRequest(
            counters=[
                cpb.AdvanceCounterRequest(counter_type=k, advance_to=index + 1, prefix="X")
                for k in order
            ]
        )
        with grpc.insecure_channel(target) as channel:
            barrier.wait()
            response, _ = raw_call(
                channel, COUNTERS + "BatchAdvanceCounters", request, key, f"b-{index}"
            )
        results = cpb.BatchAdvanceCountersResponse.FromString(response).results
        assert [r.response.counter.counter_type for r in results] == order  # request order
        return [r.status.code for r in results]

    with ThreadPoolExecutor(12) as pool:
        codes = [c for per_call in pool.map(batch, range(12)) for c in per_call]
    assert codes == [0] * 48
    with database.connect() as conn:
        assert set(conn.execute(select(models.Counter.current_value)).scalars()) == {12}


def test_a_keyed_batch_failing_unexpectedly_stores_nothing(channel, key, database, monkeypatch):
    """A batch is one transaction: a failure that is no rule of ours (a bug, here) undoes
    the good items with it, records nothing under the key, and a retry runs anew."""
    from service.counters.repository import CounterRepository

    real_lock = CounterRepository.lock

    def broken(self, keys):
        if ("po", "", "") in keys:
            raise RuntimeError("a bug")
        return real_lock(self, keys)

    request = cpb.BatchAdvanceCountersRequest(
        counters=[
            cpb.AdvanceCounterRequest(counter_type=t, advance_to=5, prefix="X")
            for t in (cpb.COUNTER_TYPE_ORDER, cpb.COUNTER_TYPE_PO)
        ]
    )
    monkeypatch.setattr(CounterRepository, "lock", broken)
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(channel, COUNTERS + "BatchAdvanceCounters", request, key, "part")
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert records(database) == 0
    assert snapshot(database)["counters"] == []
    monkeypatch.setattr(CounterRepository, "lock", real_lock)
    response, replayed = raw_call(channel, COUNTERS + "BatchAdvanceCounters", request, key, "part")
    assert not replayed
    assert [
        r.status.code for r in cpb.BatchAdvanceCountersResponse.FromString(response).results
    ] == [0, 0]


@pytest.mark.parametrize(
    "metadata",
    [
        [("idempotency-key", " padded")],
        [("idempotency-key", "padded ")],
        [("idempotency-key-bin", b"k")],
    ],
)
def test_keys_with_edge_spaces_or_in_binary_are_refused(channel, key, database, world, metadata):
    method, request = mutating_calls(world)["IssueNumbers"]
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(method)(request.SerializeToString(), metadata=(*auth(key), *metadata))
    assert violations(rich_error(caught.value)) == {"idempotency-key": "IDEMPOTENCY_KEY_INVALID"}
    assert records(database) == 0


def test_a_waiting_duplicate_gives_up_at_its_own_deadline(server, key, database, proof):
    """The first call with a key is held in the database; a duplicate with a 1 s deadline
    lets go of its connection and thread at that deadline, not when the first one ends
    (nor at the server's own 30 s bound); the first call's effect and record stay whole."""
    target = invoices_at_seven(server, key)
    request = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=2)
    with database.connect() as blocker, grpc.insecure_channel(target) as channel:
        held = blocker.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
        blocker.execute(select(models.Counter).with_for_update())  # PostgreSQL: the row
        first = Threads(
            [lambda: raw_call(channel, COUNTERS + "IssueNumbers", request, key, "held")],
            name="first",
        )
        wait_for(lambda: database.pool.checkedout() == 2, 30, "the first call in the database")
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            counters_pb2_grpc.CounterServiceStub(channel).IssueNumbers(
                request, metadata=(*auth(key), ("idempotency-key", "held")), timeout=1
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda: database.pool.checkedout() == 2, 30, "the duplicate let go")
        let_go = time.monotonic() - started
        assert let_go < 3, f"the duplicate held on {let_go:.1f}s past a 1 s deadline"
        assert first.done() == [False]
        held.commit()
        [(response, replayed)] = first.results(timeout=30)
    assert not replayed
    with grpc.insecure_channel(target) as channel:
        assert raw_call(channel, COUNTERS + "IssueNumbers", request, key, "held") == (
            response, True,
        )  # fmt: skip
    with database.connect() as conn:
        assert conn.execute(select(models.Counter.current_value)).scalar_one() == 9
    proof(f"a duplicate with a 1 s deadline ({database.dialect.name}) let go after "
          f"{let_go:.2f} s; the first call then finished and its record replays")  # fmt: skip
