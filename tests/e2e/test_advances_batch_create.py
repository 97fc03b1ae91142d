"""BatchCreateAdvances and validate_only on CreateAdvance: a migration loading the old
system's open advances. A real server, real keys, SQLite and PostgreSQL."""

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as pb

from tests.advances import advance_message, item, payload
from tests.e2e.test_idempotency import snapshot
from tests.errors import from_status
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
