"""CounterService end to end: a real server on port 0, real keys, SQLite and PostgreSQL."""

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from sqlalchemy import Engine, event, select

from service.db import models
from tests.errors import from_status, rich_error
from tests.support import auth, counter_type_of
from tests.tools import violations

INVOICE = pb.COUNTER_TYPE_INVOICE


def advance(stub, key, counter_type=INVOICE, advance_to=0, **fields):
    request = pb.AdvanceCounterRequest(counter_type=counter_type, advance_to=advance_to, **fields)
    return stub.AdvanceCounter(request, metadata=auth(key))


def failure(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return rich_error(caught.value)


def counter_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return list(conn.execute(select(models.Counter.counter_type, models.Counter.current_value)))


def events(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    models.CounterEvent.counter_type,
                    models.CounterEvent.action,
                    models.CounterEvent.old_value,
                    models.CounterEvent.new_value,
                ).order_by(models.CounterEvent.id)
            )
        )


def test_the_reference_example_advances_invoice_to_342665(counters, key):
    response = advance(counters, key, advance_to=342665, prefix="INV-")
    assert response.created and response.advanced
    assert response.previous_value == 0
    assert response.counter.current_value == 342665
    assert response.counter.next_number == "INV-0342666"
    assert response.counter.padding == 7
    assert response.counter.counter_type == INVOICE
    assert response.counter.create_time.seconds > 0
    assert response.counter.update_time == response.counter.create_time

    issued = counters.IssueNumbers(pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key))
    assert list(issued.numbers) == ["INV-0342666"]


def test_advance_is_monotonic_and_idempotent(counters, key, database):
    advance(counters, key, advance_to=100, prefix="INV-")
    again = advance(counters, key, advance_to=100)
    assert not again.advanced and not again.created
    assert again.previous_value == 100
    lower = advance(counters, key, advance_to=5)
    assert not lower.advanced
    assert lower.counter.current_value == 100
    higher = advance(counters, key, advance_to=250)
    assert higher.advanced and not higher.created
    assert higher.previous_value == 100
    assert higher.counter.next_number == "INV-0000251"
    assert higher.counter.update_time.ToDatetime() >= higher.counter.create_time.ToDatetime()
    # Only the changes are audited, with their old and new values.
    assert events(database) == [("invoice", "create", None, 100), ("invoice", "advance", 100, 250)]


def test_existing_counter_keeps_its_prefix_and_padding(counters, key):
    advance(counters, key, advance_to=1, prefix="INV-", padding=4)
    response = advance(counters, key, advance_to=2, prefix="BILL/", padding=10)
    assert response.counter.prefix == "INV-"
    assert response.counter.padding == 4
    assert response.counter.next_number == "INV-0003"


def test_padding_is_a_minimum_width(counters, key):
    response = advance(counters, key, advance_to=123456, prefix="", padding=3)
    assert response.counter.next_number == "123457"


def test_creating_a_counter_requires_a_prefix_and_writes_nothing(counters, key, database):
    error = failure(advance, counters, key, advance_to=10)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.info.reason == "PREFIX_REQUIRED"
    assert error.info.domain == "arcus.counters.v1"
    assert violations(error) == {"prefix": "PREFIX_REQUIRED"}
    assert counter_rows(database) == []
    assert events(database) == []


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"counter_type": pb.COUNTER_TYPE_UNSPECIFIED}, "counter_type", "COUNTER_TYPE_REQUIRED"),
        ({"counter_type": 99}, "counter_type", "COUNTER_TYPE_UNKNOWN"),
        ({"advance_to": -1}, "advance_to", "ADVANCE_TO_NEGATIVE"),
        ({"prefix": "X" * 21}, "prefix", "PREFIX_TOO_LONG"),
        ({"prefix": "INV\n"}, "prefix", "PREFIX_NOT_PRINTABLE"),
        ({"prefix": "INV\x00"}, "prefix", "PREFIX_NOT_PRINTABLE"),
        ({"padding": 0}, "padding", "PADDING_OUT_OF_RANGE"),
        ({"padding": 13}, "padding", "PADDING_OUT_OF_RANGE"),
        ({"padding": -1}, "padding", "PADDING_OUT_OF_RANGE"),
    ],
)
def test_bad_input_is_invalid_argument_and_writes_nothing(
    counters, key, database, fields, field, reason
):
    request = {"counter_type": INVOICE, "advance_to": 10, "prefix": "INV-", **fields}
    error = failure(
        counters.AdvanceCounter, pb.AdvanceCounterRequest(**request), metadata=auth(key)
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.info.reason == reason
    assert violations(error) == {field: reason}
    assert counter_rows(database) == []


def test_every_violation_is_reported_at_once(counters, key):
    request = pb.AdvanceCounterRequest(
        counter_type=pb.COUNTER_TYPE_UNSPECIFIED, advance_to=-5, prefix="\t", padding=13
    )
    error = failure(counters.AdvanceCounter, request, metadata=auth(key))
    assert violations(error) == {
        "counter_type": "COUNTER_TYPE_REQUIRED",
        "advance_to": "ADVANCE_TO_NEGATIVE",
        "prefix": "PREFIX_NOT_PRINTABLE",
        "padding": "PADDING_OUT_OF_RANGE",
    }


def test_limits_are_accepted(counters, key):
    response = advance(counters, key, advance_to=2**63 - 2, prefix="X" * 20, padding=12)
    assert response.counter.next_number == "X" * 20 + str(2**63 - 1)
    response = advance(counters, key, pb.COUNTER_TYPE_PO, advance_to=0, prefix="", padding=1)
    assert response.created and response.counter.next_number == "1"


def test_batch_gives_each_item_its_own_result_in_order(counters, key, database):
    advance(counters, key, pb.COUNTER_TYPE_ORDER, advance_to=50, prefix="SO-")
    request = pb.BatchAdvanceCountersRequest(
        counters=[
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=342665, prefix="INV-"),
            pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_ORDER, advance_to=10),
            pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_PO, advance_to=7),  # no prefix
            pb.AdvanceCounterRequest(
                counter_type=pb.COUNTER_TYPE_QUOTE, advance_to=1, prefix="Q", padding=13
            ),
            pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_ORDER, advance_to=60),
        ]
    )
    results = counters.BatchAdvanceCounters(request, metadata=auth(key)).results
    assert [r.status.code for r in results] == [0, 0, 3, 3, 0]
    assert results[0].response.created and results[0].response.counter.next_number == "INV-0342666"
    assert not results[1].response.advanced and results[1].response.counter.current_value == 50
    po = from_status(results[2].status)
    assert po.info.reason == "PREFIX_REQUIRED"
    assert violations(po) == {"counters[2].prefix": "PREFIX_REQUIRED"}
    quote = from_status(results[3].status)
    assert violations(quote) == {"counters[3].padding": "PADDING_OUT_OF_RANGE"}
    assert not results[2].HasField("response")
    assert results[4].response.advanced and results[4].response.previous_value == 50
    # The failing items wrote nothing and rolled back none of the others.
    assert sorted(counter_rows(database)) == [("invoice", 342665), ("order", 60)]


@pytest.mark.parametrize("size", [0, 51])
def test_batch_of_0_or_51_fails_whole_and_writes_nothing(counters, key, database, size):
    items = [
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=i, prefix="INV-")
        for i in range(size)
    ]
    error = failure(
        counters.BatchAdvanceCounters,
        pb.BatchAdvanceCountersRequest(counters=items),
        metadata=auth(key),
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"counters": "BATCH_SIZE_OUT_OF_RANGE"}
    assert counter_rows(database) == []


def test_batch_items_apply_in_request_order_even_on_one_counter(counters, key, database):
    items = [
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=5),  # missing, no prefix
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=10, prefix="I"),  # creates
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=7),  # behind: unchanged
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=20),  # advances
    ]
    results = counters.BatchAdvanceCounters(
        pb.BatchAdvanceCountersRequest(counters=items), metadata=auth(key)
    ).results
    assert violations(from_status(results[0].status)) == {"counters[0].prefix": "PREFIX_REQUIRED"}
    assert [
        (r.response.created, r.response.advanced, r.response.previous_value) for r in results[1:]
    ] == [(True, True, 0), (False, False, 10), (False, True, 10)]
    assert [r.response.counter.current_value for r in results[1:]] == [10, 10, 20]
    assert [(e[1], e[2], e[3]) for e in events(database)] == [
        ("create", None, 10),
        ("advance", 10, 20),
    ]


# A trigger refusing every write to the 'po' counter: a failure that is no rule of ours.
REFUSE_PO = {
    "postgresql": (
        [
            "CREATE FUNCTION refuse_po() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.counter_type = 'po' THEN RAISE EXCEPTION 'po refused'; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER refuse_po BEFORE INSERT OR UPDATE ON counters "
            "FOR EACH ROW EXECUTE FUNCTION refuse_po()",
        ],
        ["DROP TRIGGER refuse_po ON counters", "DROP FUNCTION refuse_po()"],
    ),
    "sqlite": (
        [
            f"CREATE TRIGGER refuse_po_{when} BEFORE {when} ON counters "
            "WHEN NEW.counter_type = 'po' BEGIN SELECT RAISE(ABORT, 'po refused'); END"
            for when in ("insert", "update")
        ],
        ["DROP TRIGGER refuse_po_insert", "DROP TRIGGER refuse_po_update"],
    ),
}


def test_an_item_the_database_refuses_fails_alone_in_the_one_transaction(counters, key, database):
    """The batch's writes are undone and its items applied one by one, each in a
    savepoint: only the refused item fails, and the batch still commits once."""
    counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key))  # the key is known
    create, drop = REFUSE_PO[database.dialect.name]
    with database.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    commits = []
    listen = ("commit", lambda conn: commits.append(conn))
    event.listen(database, *listen)
    try:
        items = [
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=5, prefix="I"),
            pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_PO, advance_to=5, prefix="P"),
            pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_ORDER, advance_to=3, prefix="O"),
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=9),
        ]
        results = counters.BatchAdvanceCounters(
            pb.BatchAdvanceCountersRequest(counters=items), metadata=auth(key)
        ).results
    finally:
        event.remove(database, *listen)
        with database.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)
    assert [r.status.code for r in results] == [0, 13, 0, 0]
    refused = from_status(results[1].status)
    assert refused.info.reason == "INTERNAL" and "po refused" not in refused.message
    assert results[3].response.previous_value == 5
    assert len(commits) == 1
    assert sorted(counter_rows(database)) == [("invoice", 9), ("order", 3)]
    assert [(e[0], e[1]) for e in events(database)] == [
        ("invoice", "create"),
        ("order", "create"),
        ("invoice", "advance"),
    ]


def test_a_batch_of_50_commits_once(server, counters, key, database):
    """One transaction for the whole batch, not one per item."""
    counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key))  # the key is now known
    commits = []
    listen = ("commit", lambda conn: commits.append(conn))
    event.listen(database, *listen)
    try:
        items = [
            pb.AdvanceCounterRequest(
                counter_type=counter_type_of(1 + i % 22), advance_to=i, prefix="P"
            )
            for i in range(50)
        ]
        counters.BatchAdvanceCounters(
            pb.BatchAdvanceCountersRequest(counters=items), metadata=auth(key)
        )
    finally:
        event.remove(database, *listen)
    assert len(commits) == 1
    assert len(events(database)) == 50  # 22 created, 28 advanced: every change audited


def test_batch_of_50_is_accepted(counters, key):
    items = [
        pb.AdvanceCounterRequest(counter_type=counter_type_of(1 + i % 22), advance_to=i, prefix="P")
        for i in range(50)
    ]
    results = counters.BatchAdvanceCounters(
        pb.BatchAdvanceCountersRequest(counters=items), metadata=auth(key)
    ).results
    assert len(results) == 50
    assert all(r.status.code == 0 for r in results)
    assert sum(r.response.created for r in results) == 22


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_single_read_runs_without_begin_or_commit_on_postgresql(counters, key, database):
    advance(counters, key, advance_to=5, prefix="I")  # the key is now remembered too
    commits = []
    listen = ("commit", lambda conn: commits.append(conn))
    event.listen(database, *listen)
    try:
        got = counters.GetCounter(pb.GetCounterRequest(counter_type=INVOICE), metadata=auth(key))
    finally:
        event.remove(database, *listen)
    assert got.current_value == 5 and commits == []


def test_get_counter(counters, key):
    advance(counters, key, advance_to=41, prefix="INV-", padding=3)
    counter = counters.GetCounter(pb.GetCounterRequest(counter_type=INVOICE), metadata=auth(key))
    assert (counter.prefix, counter.padding, counter.current_value, counter.next_number) == (
        "INV-",
        3,
        41,
        "INV-042",
    )
    error = failure(
        counters.GetCounter,
        pb.GetCounterRequest(counter_type=pb.COUNTER_TYPE_PO),
        metadata=auth(key),
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.info.reason == "COUNTER_NOT_FOUND"
    assert error.info.metadata["counter_type"] == "COUNTER_TYPE_PO"  # the name clients use
    error = failure(counters.GetCounter, pb.GetCounterRequest(), metadata=auth(key))
    assert violations(error) == {"counter_type": "COUNTER_TYPE_REQUIRED"}


def test_list_counters_pages_through_every_counter(counters, key):
    for counter_type in [22, 7, 1, 9, *range(2, 7), 8, *range(10, 22)]:
        advance(counters, key, counter_type, advance_to=counter_type, prefix="P")
    seen, token, pages = [], "", 0
    while True:
        page = counters.ListCounters(
            pb.ListCountersRequest(page_size=5, page_token=token), metadata=auth(key)
        )
        seen += [c.counter_type for c in page.counters]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 5
    assert seen == list(range(1, 23))  # counter-type order, each once
    everything = counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key))
    assert len(everything.counters) == 22 and everything.next_page_token == ""
    assert [c.counter_type for c in everything.counters] == seen


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"page_size": -1}, "page_size", "PAGE_SIZE_NEGATIVE"),
        ({"page_token": "garbage"}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": "eyJrIjoiYWR2YW5jZXMiLCJwIjoxfQ"}, "page_token", "PAGE_TOKEN_INVALID"),
        # Well-formed, but its position is no counter type (NUL, a lone surrogate).
        (
            {"page_token": "eyJrIjoiY291bnRlcnMiLCJwIjoiXHUwMDAwIn0"},
            "page_token",
            "PAGE_TOKEN_INVALID",
        ),
        (
            {"page_token": "eyJrIjoiY291bnRlcnMiLCJwIjoiXHVkODAwIn0"},
            "page_token",
            "PAGE_TOKEN_INVALID",
        ),
    ],
)
def test_list_counters_rejects_bad_paging(counters, key, request_fields, field, reason):
    error = failure(
        counters.ListCounters, pb.ListCountersRequest(**request_fields), metadata=auth(key)
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {field: reason}


def test_audit_events_name_the_key_and_follow_the_changes_in_time(counters, keys, database):
    migrator = keys.create(scopes=["migration:write"])
    issuer = keys.create(scopes=["counters:write"])
    advance(counters, migrator, advance_to=5, prefix="INV-")
    advance(counters, migrator, advance_to=9)
    counters.IssueNumbers(
        pb.IssueNumbersRequest(counter_type=INVOICE, count=2), metadata=auth(issuer)
    )
    with database.connect() as conn:
        rows = conn.execute(
            select(
                models.CounterEvent.action,
                models.CounterEvent.api_key_id,
                models.CounterEvent.create_time,
                models.ApiKey.scopes,
            )
            .join(models.ApiKey, models.ApiKey.id == models.CounterEvent.api_key_id)
            .order_by(models.CounterEvent.id)
        ).all()
        update_time = conn.execute(select(models.Counter.update_time)).scalar_one()
    assert [(r.action, r.scopes) for r in rows] == [
        ("create", "migration:write"),
        ("advance", "migration:write"),
        ("issue", "counters:write"),
    ]
    times = [r.create_time for r in rows]
    assert times == sorted(times)
    assert times[-1] == update_time
    assert all(t.tzinfo is not None for t in times)


def test_issue_numbers_are_contiguous_and_audited(counters, key, database):
    advance(counters, key, advance_to=9, prefix="INV-", padding=2)
    first = counters.IssueNumbers(
        pb.IssueNumbersRequest(counter_type=INVOICE, count=3), metadata=auth(key)
    )
    assert list(first.numbers) == ["INV-10", "INV-11", "INV-12"]
    assert (first.first_value, first.last_value) == (10, 12)
    assert first.counter.current_value == 12 and first.counter.next_number == "INV-13"
    second = counters.IssueNumbers(
        pb.IssueNumbersRequest(counter_type=INVOICE, count=1000), metadata=auth(key)
    )
    assert len(second.numbers) == 1000
    assert (second.first_value, second.last_value) == (13, 1012)
    assert second.numbers[-1] == "INV-1012"
    assert events(database)[-2:] == [("invoice", "issue", 9, 12), ("invoice", "issue", 12, 1012)]


@pytest.mark.parametrize("count", [-1, 1001])
def test_issue_count_out_of_range(counters, key, database, count):
    advance(counters, key, advance_to=1, prefix="INV-")
    error = failure(
        counters.IssueNumbers,
        pb.IssueNumbersRequest(counter_type=INVOICE, count=count),
        metadata=auth(key),
    )
    assert violations(error) == {"count": "COUNT_OUT_OF_RANGE"}
    assert counter_rows(database) == [("invoice", 1)]


def test_issue_from_a_missing_counter_is_not_found(counters, key):
    error = failure(
        counters.IssueNumbers,
        pb.IssueNumbersRequest(counter_type=pb.COUNTER_TYPE_RMA),
        metadata=auth(key),
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.info.reason == "COUNTER_NOT_FOUND"


def test_issue_past_int64_is_out_of_range_and_writes_nothing(counters, key, database):
    top = 2**63 - 1
    advance(counters, key, advance_to=top - 2, prefix="INV-")
    error = failure(
        counters.IssueNumbers,
        pb.IssueNumbersRequest(counter_type=INVOICE, count=3),
        metadata=auth(key),
    )
    assert error.code == grpc.StatusCode.OUT_OF_RANGE
    assert error.info.reason == "COUNTER_EXHAUSTED"
    assert counter_rows(database) == [("invoice", top - 2)]
    last = counters.IssueNumbers(
        pb.IssueNumbersRequest(counter_type=INVOICE, count=2), metadata=auth(key)
    )
    assert last.last_value == top
    error = failure(
        counters.IssueNumbers, pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key)
    )
    assert (error.code, error.info.reason) == (grpc.StatusCode.OUT_OF_RANGE, "COUNTER_EXHAUSTED")
    # An exhausted counter still reports itself, with no next number.
    counter = counters.GetCounter(pb.GetCounterRequest(counter_type=INVOICE), metadata=auth(key))
    assert counter.current_value == top
    assert counter.next_number == ""


def test_advance_to_int64_max(counters, key):
    response = advance(counters, key, advance_to=2**63 - 1, prefix="INV-")
    assert response.counter.current_value == 2**63 - 1
