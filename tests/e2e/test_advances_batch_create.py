"""BatchCreateAdvances and validate_only on CreateAdvance: a migration loading the old
system's open advances. A real server, real keys, SQLite and PostgreSQL."""

import collections
import contextlib
import itertools
from dataclasses import replace

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from tests.advances import Client, advance_message, item, payload
from tests.e2e.test_idempotency import snapshot
from tests.errors import from_status, rich_error
from tests.support import auth
from tests.tools import violations


def request_of(*bodies, validate_only=False):
    return pb.BatchCreateAdvancesRequest(
        requests=[pb.CreateAdvanceRequest(advance=advance_message(b)) for b in bodies],
        validate_only=validate_only,
    )


@pytest.fixture
def counter(channel, key):
    """The AR advance counter at 1000 ("ADV-0001001" next); reads its current value."""
    stub = counters_pb2_grpc.CounterServiceStub(channel)
    stub.AdvanceCounter(
        cpb.AdvanceCounterRequest(
            counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=1000, prefix="ADV-"
        ),
        metadata=auth(key),
    )
    return lambda: (
        stub.GetCounter(
            cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE), metadata=auth(key)
        ).current_value
    )


def test_each_item_stands_alone_with_its_own_status_and_path(client, counter):
    response = client.BatchCreateAdvances(
        request_of(
            payload(advanceNumber="ADV-0001500"),  # legacy, in the counter's format
            payload(items=[item("-5")]),  # bad input: fails alone
            payload(),  # POSTED: numbered after the legacy one
            payload(advanceNumber="ADV-0001500"),  # taken by the first item
            payload(state="ADVANCE_STATE_DRAFT", advanceNumber="OLD-7"),
        )
    )
    codes = [r.status.code for r in response.results]
    assert codes == [0, 3, 0, 6, 0]
    bad = from_status(response.results[1].status)
    assert bad.violations == {"requests[1].advance.items[0].txn_amount": "AMOUNT_INVALID"}
    taken = from_status(response.results[3].status)
    assert taken.info.reason == "ADVANCE_NUMBER_EXISTS"
    numbers = [r.advance.advance_number for r in response.results]
    assert (numbers[0], numbers[2], numbers[4]) == ("ADV-0001500", "ADV-0001501", "OLD-7")
    for result in (response.results[0], response.results[2], response.results[4]):
        assert client.get(result.advance.key) == result.advance
    assert counter() == 1501


def test_validating_writes_nothing_and_uses_no_number(client, counter, database):
    before = snapshot(database)
    bodies = (payload(), payload(advanceNumber="ADV-0002000"), payload(items=[item("0")]))
    validated = client.BatchCreateAdvances(request_of(*bodies, validate_only=True))
    assert [r.status.code for r in validated.results] == [0, 0, 3]
    assert validated.results[0].advance.advance_number == "ADV-0001001"  # what it would get
    alone = client.CreateAdvance(
        pb.CreateAdvanceRequest(advance=advance_message(payload()), validate_only=True)
    )
    assert alone.advance_number == "ADV-0001001" and alone.key
    assert snapshot(database) == before
    assert counter() == 1000
    real = client.BatchCreateAdvances(request_of(*bodies))
    assert [r.status.code for r in real.results] == [0, 0, 3]
    assert real.results[0].advance.advance_number == "ADV-0001001"
    assert counter() == 2000  # then the legacy number moved it


def test_an_item_may_ask_to_be_validated_alone(client, counter):
    response = client.BatchCreateAdvances(
        pb.BatchCreateAdvancesRequest(
            requests=[
                pb.CreateAdvanceRequest(advance=advance_message(payload()), validate_only=True),
                pb.CreateAdvanceRequest(advance=advance_message(payload())),
            ]
        )
    )
    tried, made = response.results
    assert (tried.advance.advance_number, made.advance.advance_number) == (
        "ADV-0001001", "ADV-0001001",
    )  # fmt: skip
    with pytest.raises(grpc.RpcError):
        client.get(tried.advance.key)
    assert client.get(made.advance.key) == made.advance


@pytest.mark.parametrize("size", [0, 101])
def test_a_batch_holds_1_to_100(client, database, size):
    error = client.fails("BatchCreateAdvances", request_of(*[payload()] * size))
    assert violations(error) == {"requests": "BATCH_SIZE_OUT_OF_RANGE"}


def test_a_hundred_in_one_call(client, counter):
    response = client.BatchCreateAdvances(request_of(*[payload()] * 100))
    assert [r.advance.advance_number for r in response.results] == [
        f"ADV-{n:07d}" for n in range(1001, 1101)
    ]


# What a migration's batch may hold: new advances, drafts, bad ones, legacy numbers in the
# counter's format (some twice, some below it, one taken), and in other formats, foreign
# currencies whose rate is stored normalised.
ITEMS = {
    "posted": payload(),
    "draft": payload(state="ADVANCE_STATE_DRAFT"),
    "bad": payload(items=[item("-5")]),
    "foreign": payload(
        paymentInformation={
            **payload()["paymentInformation"],
            "currency": {"txnCurrency": "EUR", "exchangeRate": "1.2500"},
        },
        items=[item("10.00", dimensions={"location": {"id": "DE"}, "class": {"id": "K"}})],
    ),
    **{f"legacy {n}": payload(advanceNumber=f"ADV-{n:07d}") for n in (990, 1003, 1040)},
    "legacy draft 1020": payload(state="ADVANCE_STATE_DRAFT", advanceNumber="ADV-0001020"),
    "other format": payload(advanceNumber="OLD-7"),
    "taken": payload(advanceNumber="ADV-0000500"),
}


# Items without a supplied number: batches of them only may be written in one statement.
UNNUMBERED = ["bad", "draft", "foreign", "posted"]


def _outcome(result_or_error):
    """What a caller sees of one create, keys and times aside."""
    if isinstance(result_or_error, pb.Advance):
        a = pb.Advance()
        a.CopyFrom(result_or_error)
        for name in ("key", "id", "href", "etag", "audit"):
            a.ClearField(name)
        for line in a.items:
            line.ClearField("key")
            line.ClearField("id")
        return ("OK", a.SerializeToString(deterministic=True))
    return (result_or_error.code, result_or_error.info.reason, result_or_error.violations)


def test_a_batch_answers_as_the_same_creates_one_by_one(channel, keys, database, proof):
    """Written together or in turn, a batch's outcome is that of its items created one
    by one in request order: the same statuses, numbers and counter, on a twin entity."""
    paths: collections.Counter[str] = collections.Counter()

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        names=st.one_of(
            st.lists(st.sampled_from(sorted(ITEMS)), min_size=1, max_size=8),
            st.lists(st.sampled_from(UNNUMBERED), min_size=1, max_size=8),
        )
    )
    def check(names):
        batched, batched_value = _twin(channel, keys)
        one_by_one, alone_value = _twin(channel, keys)
        with counted_inserts(database) as inserts:
            response = batched.BatchCreateAdvances(request_of(*(ITEMS[n] for n in names)))
        alone = []
        for name in names:
            try:
                alone.append(one_by_one.create(ITEMS[name]))
            except grpc.RpcError as error:
                alone.append(rich_error(error))
        together = [
            r.advance if r.status.code == 0 else from_status(r.status) for r in response.results
        ]
        assert [_outcome(a) for a in together] == [
            _outcome(a if isinstance(a, pb.Advance) else _under(a, i)) for i, a in enumerate(alone)
        ]
        assert batched_value() == alone_value()
        made = [a for a in together if isinstance(a, pb.Advance)]
        for advance in made:
            assert batched.get(advance.key) == advance  # as stored, to the last digit
        paths["examples"] += 1
        if len(made) > 1:
            paths[inserts()] += 1

    check()
    proof(
        f"{paths['examples']} batches ({database.dialect.name}) answered as their items one "
        f"by one; of those creating 2 or more, {paths['alone']} written in one statement, "
        f"{paths['together']} together in a transaction, {paths['in turn']} in turn"
    )


def _twin(channel, keys):
    """A client of a new entity whose AR advance counter is at 1000 and in use (so that
    creates may take the one statement), with an advance numbered ADV-0000500; and a
    reader of that counter."""
    key = keys.create(f"twin{next(_twins)}")
    stub = counters_pb2_grpc.CounterServiceStub(channel)
    stub.AdvanceCounter(
        cpb.AdvanceCounterRequest(
            counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=999, prefix="ADV-"
        ),
        metadata=auth(key),
    )
    stub.IssueNumbers(
        cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE), metadata=auth(key)
    )
    client = Client(channel, key)
    client.create(payload(advanceNumber="ADV-0000500"))
    request = cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE)
    return client, lambda: stub.GetCounter(request, metadata=auth(key)).current_value


_twins = itertools.count()


def _under(error, index):
    """A lone create's violations, under the batch item's path."""
    return replace(
        error, violations={f"requests[{index}].{p}": r for p, r in error.violations.items()}
    )


@contextlib.contextmanager
def counted_inserts(engine):
    """How the block's advances were written: "alone" (the one statement that also
    numbers them), "together" (one INSERT, an executemany being one) or "in turn"."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO advances " in statement:
            seen.append(statement.lstrip().startswith("WITH"))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield (
            lambda: "alone" if seen[-1:] == [True] else "together" if seen == [False] else "in turn"
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_hundred_are_written_in_a_few_statements(client, counter, database, proof):
    """The batch is written together: statements do not grow with the number of items.
    Once the counter is in use, on PostgreSQL, in one statement with their numbers."""
    counts = []
    seen: list[list[str]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split(None, 3)[:3])

    for _ in range(2):  # the first issue puts the counter in use (the general path)
        seen.clear()
        event.listen(database, "before_cursor_execute", record)
        try:
            response = client.BatchCreateAdvances(request_of(*[payload()] * 100))
        finally:
            event.remove(database, "before_cursor_execute", record)
        assert all(r.status.code == 0 for r in response.results)
        assert len(seen) <= 12, seen
        counts.append(len(seen))
    numbers = [r.advance.advance_number for r in response.results]
    assert numbers == [f"ADV-{n:07d}" for n in range(1101, 1201)]
    if database.dialect.name == "postgresql":
        assert counts[1] == 1
    proof(f"a batch of 100 advances ({database.dialect.name}): {counts} statements")


def test_a_refused_write_is_undone_and_the_items_created_in_turn(client, counter, keys, channel):
    """The counter issues numbers an advance already has (its format changed back): the
    batch written together is refused, and in turn each numbered item fails alone."""
    client.create(payload(advanceNumber="NEW-0001001"))  # another format: stored as given
    stub = counters_pb2_grpc.CounterServiceStub(channel)
    stub.UpdateCounter(
        cpb.UpdateCounterRequest(
            counter=cpb.Counter(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, prefix="NEW-"),
            update_mask=FieldMask(paths=["prefix"]),
        ),
        metadata=client.metadata,
    )
    response = client.BatchCreateAdvances(
        request_of(payload(state="ADVANCE_STATE_DRAFT"), payload(), payload())
    )
    draft, first, second = response.results
    assert draft.status.code == 0
    for failed in (first, second):
        error = from_status(failed.status)
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert error.info.reason == "ADVANCE_COUNTER_BEHIND"
        assert error.info.metadata["advance_number"] == "NEW-0001001"
    assert counter() == 1000  # nothing issued
    assert client.get(draft.advance.key) == draft.advance
