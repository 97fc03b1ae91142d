"""ListCounterEvents and VoidNumbers end to end: the audit trail a cutover signs off on,
and every gap in a sequence accounted for. A real server, real keys, SQLite and PostgreSQL."""

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask

from service.auth.store import KeyStore
from service.counters import repository
from service.db.uow import UnitOfWork
from tests.e2e.test_idempotency import snapshot
from tests.errors import rich_error
from tests.support import auth
from tests.tools import violations

INVOICE, ORDER = pb.COUNTER_TYPE_INVOICE, pb.COUNTER_TYPE_ORDER
K = pb.CounterEventKind


def call(stub, method, request, key, *metadata):
    return getattr(stub, method)(request, metadata=auth(key) + tuple(metadata))


def failure(stub, method, request, key):
    with pytest.raises(grpc.RpcError) as caught:
        call(stub, method, request, key)
    return rich_error(caught.value)


def void(counters, key, first, last, reason="document failed", **fields):
    request = pb.VoidNumbersRequest(
        counter_type=fields.pop("counter_type", INVOICE), first_value=first, last_value=last,
        reason=reason, **fields,
    )  # fmt: skip
    return call(counters, "VoidNumbers", request, key)


def issue(counters, key, count=1, **fields):
    request = pb.IssueNumbersRequest(
        counter_type=fields.pop("counter_type", INVOICE), count=count, **fields
    )
    return call(counters, "IssueNumbers", request, key)


def events(counters, key, page_size=0, **filters):
    """Every event through every page."""
    found, token = [], ""
    while True:
        page = call(
            counters,
            "ListCounterEvents",
            pb.ListCounterEventsRequest(page_size=page_size, page_token=token, **filters),
            key,
        )
        found += page.events
        token = page.next_page_token
        if not token:
            return found


def key_id(database, key) -> str:
    records = KeyStore(UnitOfWork(database)).list_keys()
    return str(next(r.id for r in records if r.hint[-4:] == key[-4:]))


def test_the_trail_of_a_cutover(counters, key, database):
    call(
        counters, "AdvanceCounter",
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=4711, prefix="INV-"), key,
    )  # fmt: skip
    call(
        counters, "AdvanceCounter",
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=4720), key,
        ("idempotency-key", "cutover-1"),
    )  # fmt: skip
    issue(counters, key, 3)
    call(
        counters,
        "UpdateCounter",
        pb.UpdateCounterRequest(
            counter=pb.Counter(counter_type=INVOICE, padding=5),
            update_mask=FieldMask(paths=["padding"]),
        ),
        key,
    )
    voided = void(counters, key, 4722, 4722, reason="  printer jammed, document destroyed ")
    assert list(voided.numbers) == ["INV-04722"]
    trail = events(counters, key)
    by = key_id(database, key)
    assert [
        (e.kind, e.previous_value, e.new_value, e.first_value, e.last_value, e.key_id)
        for e in trail
    ] == [
        (K.COUNTER_EVENT_KIND_CREATED, 0, 4711, 0, 0, by),
        (K.COUNTER_EVENT_KIND_ADVANCED, 4711, 4720, 0, 0, by),
        (K.COUNTER_EVENT_KIND_ISSUED, 4720, 4723, 4721, 4723, by),
        (K.COUNTER_EVENT_KIND_UPDATED, 0, 0, 0, 0, by),
        (K.COUNTER_EVENT_KIND_VOIDED, 4723, 4723, 4722, 4722, by),
    ]
    assert trail[1].idempotency_key == "cutover-1" and trail[0].idempotency_key == ""
    assert trail[3].reason == "padding 7 -> 5"
    assert trail[4].reason == "printer jammed, document destroyed"
    assert trail[4] == voided.event
    assert len({e.event_id for e in trail}) == 5
    assert all(e.event_id.isdigit() and len(e.event_id) == 16 for e in trail)
    assert [e.create_time.ToDatetime() for e in trail] == sorted(
        e.create_time.ToDatetime() for e in trail
    )
    # The void changed no value, and the voided number is never issued again.
    got = call(counters, "GetCounter", pb.GetCounterRequest(counter_type=INVOICE), key)
    assert got.current_value == 4723
    assert list(issue(counters, key).numbers) == ["INV-04724"]


def test_events_filter_and_page_by_type_series_and_period(counters, key, monkeypatch):
    yearly = pb.COUNTER_RESET_YEARLY
    for series, period, reset in (
        ("", "", pb.COUNTER_RESET_NEVER), ("EU", "2025", yearly), ("EU", "2026", yearly),
    ):  # fmt: skip
        call(
            counters, "AdvanceCounter",
            pb.AdvanceCounterRequest(
                counter_type=INVOICE, advance_to=5, prefix="I", series=series, period=period,
                reset=reset,
            ),
            key,
        )  # fmt: skip
    call(
        counters, "AdvanceCounter",
        pb.AdvanceCounterRequest(counter_type=ORDER, advance_to=1, prefix="SO"), key,
    )  # fmt: skip
    issue(counters, key, series="EU", document_date="2026-02-01")
    everything = events(counters, key)
    assert len(everything) == 5
    assert events(counters, key, page_size=1) == everything
    assert [e.counter_type for e in events(counters, key, counter_type=ORDER)] == [ORDER]
    assert {(e.series, e.period) for e in events(counters, key, series="EU")} == {
        ("EU", "2025"), ("EU", "2026"),
    }  # fmt: skip
    assert [e.kind for e in events(counters, key, series="EU", period="2026")] == [
        K.COUNTER_EVENT_KIND_CREATED, K.COUNTER_EVENT_KIND_ISSUED,
    ]  # fmt: skip
    # A sparse filter looks at a bounded number of rows a page: pages may come back short
    # (even empty), and following the tokens still finds every event, once.
    monkeypatch.setattr(repository, "EVENT_SCAN", 2)
    assert events(counters, key, series="EU", page_size=1000) == [
        e for e in everything if e.series == "EU"
    ]
    first = call(counters, "ListCounterEvents", pb.ListCounterEventsRequest(page_size=1), key)
    error = failure(
        counters, "ListCounterEvents",
        pb.ListCounterEventsRequest(page_token=first.next_page_token, series="EU"), key,
    )  # fmt: skip
    assert violations(error) == {"page_token": "PAGE_TOKEN_INVALID"}


@pytest.fixture
def issued(counters, key):
    """INV-0000101..110 issued after an advance skipped 1..100."""
    call(
        counters, "AdvanceCounter",
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=100, prefix="INV-"), key,
    )  # fmt: skip
    issue(counters, key, 4)  # 101..104
    issue(counters, key, 6)  # 105..110


def test_a_void_spans_issues_and_names_its_numbers(counters, key, issued):
    voided = void(counters, key, 103, 106)
    assert list(voided.numbers) == ["INV-0000103", "INV-0000104", "INV-0000105", "INV-0000106"]
    assert (voided.event.first_value, voided.event.last_value) == (103, 106)


@pytest.mark.parametrize(
    ("first", "last", "reason", "values"),
    [
        (100, 101, "NUMBER_NOT_ISSUED", "100"),  # skipped by the advance
        (1, 3, "NUMBER_NOT_ISSUED", "1-3"),
        (109, 112, "NUMBER_NOT_ISSUED", "111-112"),  # not issued yet
        (104, 105, "NUMBER_ALREADY_VOIDED", "104"),
    ],
)
def test_only_issued_numbers_not_yet_voided_can_be_voided(
    counters, key, database, issued, first, last, reason, values
):
    void(counters, key, 104, 104)
    before = snapshot(database)
    error = failure(
        counters, "VoidNumbers",
        pb.VoidNumbersRequest(
            counter_type=INVOICE, first_value=first, last_value=last, reason="x"
        ),
        key,
    )  # fmt: skip
    assert (error.code, error.info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, reason)
    assert error.info.metadata["values"] == values
    assert snapshot(database) == before


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"first_value": 0, "last_value": 1}, {"first_value": "VALUE_OUT_OF_RANGE"}),
        ({"first_value": 5, "last_value": 4}, {"last_value": "VALUE_OUT_OF_RANGE"}),
        ({"first_value": 1, "last_value": 1001}, {"last_value": "TOO_MANY_NUMBERS"}),
        ({"reason": "   "}, {"reason": "REASON_REQUIRED"}),
        ({"reason": "x" * 501}, {"reason": "REASON_TOO_LONG"}),
        ({"series": "a b"}, {"series": "SERIES_INVALID"}),
        ({"period": "2025"}, {"period": "PERIOD_INVALID"}),  # never resets
        ({"counter_type": 0}, {"counter_type": "COUNTER_TYPE_REQUIRED"}),
    ],
)
def test_bad_voids_are_invalid_argument_and_write_nothing(
    counters, key, database, issued, fields, expected
):
    request = {"counter_type": INVOICE, "first_value": 101, "last_value": 101, "reason": "x"}
    before = snapshot(database)
    error = failure(counters, "VoidNumbers", pb.VoidNumbersRequest(**{**request, **fields}), key)
    assert violations(error) == expected
    assert snapshot(database) == before


def test_a_void_of_a_missing_counter_or_period(counters, key, issued):
    error = failure(
        counters, "VoidNumbers",
        pb.VoidNumbersRequest(counter_type=ORDER, first_value=1, last_value=1, reason="x"), key,
    )  # fmt: skip
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
    call(
        counters,
        "AdvanceCounter",
        pb.AdvanceCounterRequest(
            counter_type=ORDER,
            advance_to=0,
            prefix="SO/{YYYY}/",
            reset=pb.COUNTER_RESET_YEARLY,
            period="2025",
        ),
        key,
    )
    issue(counters, key, counter_type=ORDER, document_date="2025-03-01")
    voided = void(counters, key, 1, 1, counter_type=ORDER, period="2025")
    assert list(voided.numbers) == ["SO/2025/0000001"]
    error = failure(
        counters, "VoidNumbers",
        pb.VoidNumbersRequest(counter_type=ORDER, first_value=1, last_value=1, reason="x"), key,
    )  # fmt: skip
    assert violations(error) == {"period": "PERIOD_REQUIRED"}
    error = failure(
        counters, "VoidNumbers",
        pb.VoidNumbersRequest(
            counter_type=ORDER, period="2026", first_value=1, last_value=1, reason="x"
        ),
        key,
    )  # fmt: skip
    assert error.info.reason == "NUMBER_NOT_ISSUED"
