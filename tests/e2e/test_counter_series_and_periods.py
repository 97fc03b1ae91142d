"""Series, periods, formats, UpdateCounter, validate_only and expected_current_value end to
end: a real server on port 0, real keys, SQLite and PostgreSQL."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import Engine, func, select

from service.db import models
from service.db.uow import UnitOfWork
from service.entities.store import EntityStore
from tests.e2e.test_idempotency import snapshot
from tests.errors import rich_error
from tests.support import auth
from tests.tools import violations

INVOICE, ORDER, PO = pb.COUNTER_TYPE_INVOICE, pb.COUNTER_TYPE_ORDER, pb.COUNTER_TYPE_PO
YEARLY, MONTHLY = pb.COUNTER_RESET_YEARLY, pb.COUNTER_RESET_MONTHLY
FISCAL, NEVER = pb.COUNTER_RESET_FISCAL_YEARLY, pb.COUNTER_RESET_NEVER


def advance(counters, key, counter_type=INVOICE, advance_to=0, metadata=(), **fields):
    request = pb.AdvanceCounterRequest(counter_type=counter_type, advance_to=advance_to, **fields)
    return counters.AdvanceCounter(request, metadata=auth(key) + tuple(metadata))


def issue(counters, key, counter_type=INVOICE, **fields):
    request = pb.IssueNumbersRequest(counter_type=counter_type, **fields)
    return counters.IssueNumbers(request, metadata=auth(key))


def get(counters, key, counter_type=INVOICE, **fields):
    request = pb.GetCounterRequest(counter_type=counter_type, **fields)
    return counters.GetCounter(request, metadata=auth(key))


def update(counters, key, paths=None, **fields):
    request = pb.UpdateCounterRequest(counter=pb.Counter(**fields))
    if paths is not None:
        request.update_mask.CopyFrom(FieldMask(paths=paths))
    return counters.UpdateCounter(request, metadata=auth(key))


def failure(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return rich_error(caught.value)


def configure(database: Engine, **settings) -> None:
    EntityStore(UnitOfWork(database)).configure("acme", **settings)


def yearly_invoices(counters, key, advance_to=4711):
    return advance(
        counters, key, advance_to=advance_to, prefix="INV/{YYYY}/", padding=5, reset=YEARLY,
        period="2025",
    )  # fmt: skip


def test_the_cutover_from_a_yearly_system(counters, key):
    """The old system's last invoice of 2025 was INV/2025/04711."""
    made = yearly_invoices(counters, key)
    assert (made.created, made.counter.period, made.counter.reset) == (True, "2025", YEARLY)
    assert made.counter.next_number == "INV/2025/04712"
    assert list(issue(counters, key, document_date="2025-12-31").numbers) == ["INV/2025/04712"]
    assert list(issue(counters, key, document_date="2026-01-02").numbers) == ["INV/2026/00001"]
    second = issue(counters, key, document_date="2026-03-01", count=2)
    assert list(second.numbers) == ["INV/2026/00002", "INV/2026/00003"]
    assert (second.counter.period, second.first_value, second.last_value) == ("2026", 2, 3)
    assert get(counters, key, period="2025").current_value == 4712
    assert get(counters, key, period="2026").next_number == "INV/2026/00004"


def test_a_fiscal_year_starting_in_july(counters, key, database):
    configure(database, fiscal_year_start_month=7)
    made = advance(
        counters, key, ORDER, 120, prefix="SO-{FY}-", padding=5, reset=FISCAL, period="FY2026"
    )
    assert made.counter.next_number == "SO-2026-00121"
    june = issue(counters, key, ORDER, document_date="2026-06-30")
    july = issue(counters, key, ORDER, document_date="2026-07-01")
    assert (list(june.numbers), june.counter.period) == (["SO-2026-00121"], "FY2026")
    assert (list(july.numbers), july.counter.period) == (["SO-2027-00001"], "FY2027")
    # The fiscal year 2026 started on 2025-07-01.
    early = issue(counters, key, ORDER, document_date="2025-07-01")
    assert list(early.numbers) == ["SO-2026-00122"]
    assert list(issue(counters, key, ORDER, document_date="2025-06-30").numbers) == [
        "SO-2025-00001"
    ]


def test_monthly_numbers_with_every_token_and_a_suffix(counters, key, database):
    configure(database, fiscal_year_start_month=4)
    advance(
        counters, key, PO, 0, prefix="PO{YY}{MM}-", suffix="/{FY}", padding=3, reset=MONTHLY,
        period="2026-03",
    )  # fmt: skip
    assert list(issue(counters, key, PO, document_date="2026-03-31").numbers) == ["PO2603-001/2026"]
    assert list(issue(counters, key, PO, document_date="2026-04-01").numbers) == ["PO2604-001/2027"]
    assert list(issue(counters, key, PO, document_date="2026-03-01").numbers) == ["PO2603-002/2026"]


def test_a_never_resetting_counter_renders_its_tokens_from_the_documents_date(counters, key):
    advance(counters, key, advance_to=9, prefix="INV-{YYYY}-")
    assert list(issue(counters, key, document_date="2024-02-29").numbers) == ["INV-2024-0000010"]
    assert list(issue(counters, key, document_date="2031-01-01").numbers) == ["INV-2031-0000011"]


def test_today_is_the_entitys_date_in_its_time_zone(counters, key, database):
    # Kiribati is 14 hours ahead of UTC, Niue 11 behind: their dates differ half the day.
    for zone in ("Pacific/Kiritimati", "Pacific/Niue"):
        configure(database, time_zone=zone)
        series = zone.split("/")[1]
        advance(counters, key, series=series, prefix="D{YYYY}{MM}-", reset=MONTHLY,
                period="2020-01")  # fmt: skip
        before = datetime.now(ZoneInfo(zone)).date()
        issued = issue(counters, key, series=series)
        after = datetime.now(ZoneInfo(zone)).date()
        assert issued.counter.period in {f"{d:%Y-%m}" for d in (before, after)}
        assert issued.numbers[0] in {f"D{d:%Y%m}-0000001" for d in (before, after)}
        shown = get(counters, key, series=series)  # no period: today's
        assert shown.period in {f"{d:%Y-%m}" for d in (before, after)}


def test_series_are_independent_sequences_with_their_own_format(counters, key):
    advance(counters, key, advance_to=100, prefix="INV-")
    advance(counters, key, advance_to=7, prefix="EU-", padding=3, series="EU")
    assert list(issue(counters, key, series="EU").numbers) == ["EU-008"]
    assert list(issue(counters, key).numbers) == ["INV-0000101"]
    assert get(counters, key, series="EU").current_value == 8
    # A new series needs its own prefix; a new period of a series does not.
    error = failure(advance, counters, key, advance_to=1, series="US")
    assert violations(error) == {"prefix": "PREFIX_REQUIRED"}
    assert "invoice series 'US'" in error.message
    error = failure(issue, counters, key, series="US")
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
    assert error.info.metadata["series"] == "US"


def test_a_new_period_of_an_existing_series_takes_its_format(counters, key):
    yearly_invoices(counters, key)
    made = advance(counters, key, advance_to=12, period="2026", prefix="IGNORED-", reset=MONTHLY)
    assert (made.created, made.counter.next_number) == (True, "INV/2026/00013")
    assert made.counter.reset == YEARLY


def test_a_period_not_started_yet_reads_as_zero_and_writes_nothing(counters, key, database):
    yearly_invoices(counters, key)
    before = snapshot(database)
    fresh = get(counters, key, period="2031")
    assert (fresh.current_value, fresh.next_number, fresh.period) == (0, "INV/2031/00001", "2031")
    assert not fresh.HasField("create_time") and not fresh.HasField("update_time")
    years = {str(datetime.now(UTC).year)}
    today = get(counters, key)  # no period: the period of today (UTC, the default zone)
    years.add(str(datetime.now(UTC).year))
    assert today.period in years
    assert snapshot(database) == before


def test_listing_runs_by_type_then_series_then_period_with_filters(counters, key):
    yearly_invoices(counters, key)
    advance(counters, key, advance_to=3, period="2024")
    advance(counters, key, advance_to=5, prefix="EU-", series="EU")
    advance(counters, key, ORDER, 1, prefix="SO-")
    advance(counters, key, PO, 1, prefix="PO-", series="A")

    def listed(**fields):
        names, token = [], ""
        while True:
            page = counters.ListCounters(
                pb.ListCountersRequest(page_size=1, page_token=token, **fields), metadata=auth(key)
            )
            names += [(c.counter_type, c.series, c.period) for c in page.counters]
            token = page.next_page_token
            if not token:
                return names

    assert listed() == [
        (ORDER, "", ""), (INVOICE, "", "2024"), (INVOICE, "", "2025"), (INVOICE, "EU", ""),
        (PO, "A", ""),
    ]  # fmt: skip
    assert listed(counter_type=INVOICE) == [
        (INVOICE, "", "2024"), (INVOICE, "", "2025"), (INVOICE, "EU", ""),
    ]  # fmt: skip
    assert listed(series="EU") == [(INVOICE, "EU", "")]
    first = counters.ListCounters(pb.ListCountersRequest(page_size=1), metadata=auth(key))
    error = failure(
        counters.ListCounters,
        pb.ListCountersRequest(page_token=first.next_page_token, counter_type=INVOICE),
        metadata=auth(key),
    )
    assert violations(error) == {"page_token": "PAGE_TOKEN_INVALID"}


def test_validate_only_answers_as_a_real_call_and_writes_nothing(counters, key, database):
    yearly_invoices(counters, key, advance_to=10)
    request = dict(advance_to=20, period="2025")
    before = snapshot(database)
    with database.connect() as conn:
        records = conn.execute(select(func.count()).select_from(models.IdempotencyRecord)).scalar()
    tried = advance(
        counters, key, validate_only=True, metadata=[("idempotency-key", "v1")], **request
    )
    made = advance(counters, key, validate_only=True, advance_to=5, period="2026")
    assert snapshot(database) == before
    with database.connect() as conn:
        assert (
            records
            == conn.execute(select(func.count()).select_from(models.IdempotencyRecord)).scalar()
        )
    real = advance(counters, key, metadata=[("idempotency-key", "v1")], **request)
    for answer in (tried, real):  # the clock differs, nothing else
        answer.counter.ClearField("update_time")
    assert tried == real and (real.advanced, real.previous_value) == (True, 10)
    assert (made.created, made.counter.current_value, made.counter.next_number) == (
        True, 5, "INV/2026/00006",
    )  # fmt: skip


def test_a_validated_batch_gives_the_real_batchs_answers_item_by_item(counters, key, database):
    yearly_invoices(counters, key, advance_to=10)
    items = [
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=30, period="2025"),
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=20, period="2025"),  # no-op now
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, period=""),  # PERIOD_REQUIRED
        pb.AdvanceCounterRequest(counter_type=ORDER, advance_to=4, prefix="SO-"),
        pb.AdvanceCounterRequest(counter_type=ORDER, advance_to=9),  # sees the one before
        pb.AdvanceCounterRequest(
            counter_type=INVOICE, advance_to=99, period="2025", expected_current_value=10
        ),  # the first item moved it
        pb.AdvanceCounterRequest(counter_type=PO, advance_to=1, prefix="{X}"),
    ]
    before = snapshot(database)

    def batch(validate_only):
        response = counters.BatchAdvanceCounters(
            pb.BatchAdvanceCountersRequest(counters=items, validate_only=validate_only),
            metadata=auth(key),
        )
        for result in response.results:
            result.response.counter.ClearField("create_time")
            result.response.counter.ClearField("update_time")
        return response

    validated = batch(True)
    assert snapshot(database) == before
    assert validated == batch(False)
    assert [r.status.code for r in validated.results] == [0, 0, 3, 0, 0, 9, 3]
    assert [r.response.counter.current_value for r in validated.results[:5]] == [30, 30, 0, 4, 9]
    assert get(counters, key, ORDER).current_value == 9


def test_an_item_may_ask_to_be_validated_alone(counters, key):
    response = counters.BatchAdvanceCounters(
        pb.BatchAdvanceCountersRequest(
            counters=[
                pb.AdvanceCounterRequest(
                    counter_type=ORDER, advance_to=4, prefix="SO-", validate_only=True
                ),
                pb.AdvanceCounterRequest(counter_type=PO, advance_to=2, prefix="PO-"),
            ]
        ),
        metadata=auth(key),
    )
    assert [r.response.created for r in response.results] == [True, True]
    assert failure(get, counters, key, ORDER).code == grpc.StatusCode.NOT_FOUND
    assert get(counters, key, PO).current_value == 2


def test_expected_current_value_guards_a_cutover_and_changes_nothing(counters, key, database):
    yearly_invoices(counters, key)
    before = snapshot(database)
    error = failure(advance, counters, key, advance_to=5000, period="2025",
                    expected_current_value=4700)  # fmt: skip
    assert (error.code, error.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION, "COUNTER_VALUE_CHANGED",
    )  # fmt: skip
    assert error.info.metadata["current_value"] == "4711"
    assert error.info.domain == "arcus.counters.v1"
    assert snapshot(database) == before
    ok = advance(counters, key, advance_to=5000, period="2025", expected_current_value=4711)
    assert ok.counter.current_value == 5000
    fresh = advance(counters, key, advance_to=3, period="2026", expected_current_value=0)
    assert fresh.created
    error = failure(advance, counters, key, ORDER, 1, prefix="SO-", expected_current_value=-1)
    assert violations(error) == {"expected_current_value": "EXPECTED_CURRENT_VALUE_NEGATIVE"}


def test_update_counter_changes_the_format_of_numbers_issued_from_then_on(counters, key, database):
    advance(counters, key, advance_to=41, prefix="INV-")
    assert list(issue(counters, key).numbers) == ["INV-0000042"]
    changed = update(
        counters, key, ["prefix", "suffix", "padding"], counter_type=INVOICE, prefix="F{YY}-",
        suffix="-X", padding=4,
    )  # fmt: skip
    assert (changed.prefix, changed.suffix, changed.padding, changed.current_value) == (
        "F{YY}-", "-X", 4, 42,
    )  # fmt: skip
    assert list(issue(counters, key, document_date="2026-05-01").numbers) == ["F26-0043-X"]
    with database.connect() as conn:
        event = models.CounterEvent
        audit = conn.execute(
            select(event.reason, event.api_key_id).where(event.action == "update")
        ).one()
    assert audit.reason == "prefix 'INV-' -> 'F{YY}-'; suffix '' -> '-X'; padding 7 -> 4"
    assert audit.api_key_id is not None
    # Without a mask: the fields that are set.
    assert update(counters, key, counter_type=INVOICE, prefix="G-").prefix == "G-"
    assert get(counters, key).next_number == "G-0044-X"
    # The series is in use and never resets: an issue reads no format first, and still
    # writes the numbers with the one in force when it increments.
    assert list(issue(counters, key).numbers) == ["G-0044-X"]
    update(counters, key, ["suffix"], counter_type=INVOICE, suffix="")
    assert list(issue(counters, key).numbers) == ["G-0045"]


def test_the_reset_may_change_only_while_nothing_was_issued(counters, key):
    advance(counters, key, advance_to=4711, prefix="INV/{YYYY}/", padding=5)
    # Never issued: the migration may still make it yearly. The value it advanced under
    # the old reset stays stored, unseen, and comes back if the reset does.
    yearly = update(counters, key, ["reset"], counter_type=INVOICE, reset=YEARLY, period="2025")
    assert (yearly.reset, yearly.period, yearly.current_value) == (YEARLY, "2025", 0)
    listed = counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key)).counters
    assert listed == []  # the never-resetting value does not fit a yearly counter
    assert get(counters, key, period="2025").current_value == 0
    advance(counters, key, advance_to=4711, period="2025")
    assert update(counters, key, ["reset"], counter_type=INVOICE, reset=NEVER).current_value == 4711
    update(counters, key, ["reset"], counter_type=INVOICE, reset=YEARLY)
    issue(counters, key, document_date="2025-12-31")
    error = failure(update, counters, key, ["reset"], counter_type=INVOICE, reset=MONTHLY)
    assert (error.code, error.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "COUNTER_IN_USE",
    )
    # The same reset again, or another field, is fine.
    assert update(counters, key, ["reset", "suffix"], counter_type=INVOICE, reset=YEARLY,
                  suffix="-A").suffix == "-A"  # fmt: skip


@pytest.mark.parametrize(
    ("paths", "fields", "expected"),
    [
        (["current_value"], {}, {"update_mask.paths[0]": "FIELD_NOT_WRITABLE"}),
        (["next_number", "series"], {}, {"update_mask.paths[0]": "FIELD_NOT_WRITABLE",
                                         "update_mask.paths[1]": "FIELD_NOT_WRITABLE"}),
        (["colour"], {}, {"update_mask.paths[0]": "FIELD_MASK_PATH_UNKNOWN"}),
        (None, {}, {"update_mask": "FIELD_MASK_EMPTY"}),
        (["padding"], {"padding": 13}, {"counter.padding": "PADDING_OUT_OF_RANGE"}),
        (["prefix"], {"prefix": "{DD}"}, {"counter.prefix": "TOKEN_UNKNOWN"}),
        (["reset"], {"reset": 9}, {"counter.reset": "RESET_UNKNOWN"}),
        (["prefix"], {"series": "no spaces"}, {"counter.series": "SERIES_INVALID"}),
    ],
)  # fmt: skip
def test_update_counter_refuses_bad_input_and_writes_nothing(
    counters, key, database, paths, fields, expected
):
    advance(counters, key, advance_to=1, prefix="INV-")
    before = snapshot(database)
    error = failure(update, counters, key, paths, counter_type=INVOICE, **fields)
    assert violations(error) == expected
    assert snapshot(database) == before


def test_update_counter_of_a_missing_series_is_not_found(counters, key):
    error = failure(update, counters, key, ["prefix"], counter_type=INVOICE, prefix="X")
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")


@pytest.mark.parametrize(
    ("call", "fields", "expected"),
    [
        ("advance", {"prefix": "INV-{DD}"}, {"prefix": "TOKEN_UNKNOWN"}),
        ("advance", {"prefix": "A", "suffix": "}"}, {"suffix": "TOKEN_UNKNOWN"}),
        ("advance", {"prefix": "A", "period": "25"}, {"period": "PERIOD_INVALID"}),
        ("advance", {"prefix": "A", "period": "2025"}, {"period": "PERIOD_INVALID"}),  # never
        ("advance", {"prefix": "A", "reset": YEARLY}, {"period": "PERIOD_REQUIRED"}),
        ("advance", {"prefix": "A", "reset": YEARLY, "period": "2025-06"},
         {"period": "PERIOD_INVALID"}),
        ("advance", {"prefix": "A", "reset": MONTHLY, "period": "2025-13"},
         {"period": "PERIOD_INVALID"}),
        ("advance", {"prefix": "A", "series": "EU/1"}, {"series": "SERIES_INVALID"}),
        ("advance", {"prefix": "A", "series": "x" * 41}, {"series": "SERIES_INVALID"}),
        ("advance", {"prefix": "A", "reset": 7}, {"reset": "RESET_UNKNOWN"}),
        ("issue", {"document_date": "2025-02-30"}, {"document_date": "DATE_INVALID"}),
        ("issue", {"document_date": "31.12.2025"}, {"document_date": "DATE_INVALID"}),
        ("issue", {"series": "a b"}, {"series": "SERIES_INVALID"}),
        ("get", {"period": "Q1"}, {"period": "PERIOD_INVALID"}),
        ("get", {"period": "2025"}, {"period": "PERIOD_INVALID"}),  # never resets
        ("list", {"series": "ä"}, {"series": "SERIES_INVALID"}),
    ],
)  # fmt: skip
def test_bad_input_is_invalid_argument_with_stable_reasons_and_nothing_is_written(
    counters, key, database, call, fields, expected
):
    advance(counters, key, ORDER, 1, prefix="SO-")
    before = snapshot(database)
    calls = {
        "advance": lambda: advance(counters, key, INVOICE, 5, **fields),
        "issue": lambda: issue(counters, key, ORDER, **fields),
        "get": lambda: get(counters, key, ORDER, **fields),
        "list": lambda: counters.ListCounters(pb.ListCountersRequest(**fields), metadata=auth(key)),
    }
    assert violations(failure(calls[call])) == expected
    assert snapshot(database) == before


def test_a_date_past_fy9999_is_refused(counters, key, database):
    configure(database, fiscal_year_start_month=7)
    advance(counters, key, advance_to=1, prefix="F", reset=FISCAL, period="FY9999")
    assert list(issue(counters, key, document_date="9999-06-30").numbers) == ["F0000002"]
    error = failure(issue, counters, key, document_date="9999-07-01")
    assert violations(error) == {"document_date": "DATE_INVALID"}


def test_a_first_version_client_sees_what_it_always_saw(counters, key):
    """No new field set: one sequence per type, prefix + padded value, as before."""
    made = advance(counters, key, advance_to=342665, prefix="INV-")
    assert (made.counter.series, made.counter.period, made.counter.suffix) == ("", "", "")
    assert made.counter.reset == NEVER
    assert list(issue(counters, key, count=2).numbers) == ["INV-0342666", "INV-0342667"]
    assert get(counters, key).next_number == "INV-0342668"


def test_issuing_without_a_date_picks_the_period_of_today(counters, key):
    advance(counters, key, advance_to=0, prefix="Y{YYYY}-", reset=YEARLY, period="2020")
    before = datetime.now(UTC).date()
    issued = issue(counters, key)
    after = datetime.now(UTC).date()
    assert issued.counter.period in {str(before.year), str(after.year)}
    assert issued.numbers[0] in {f"Y{before.year}-0000001", f"Y{after.year}-0000001"}
    assert get(counters, key, period="2020").current_value == 0
