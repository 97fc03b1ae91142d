"""service/counters/domain.py to the letter: advancing a counter (created, raised or left
as it is), its audit rows, and the exact words of every refusal. Pure: no I/O."""

from datetime import UTC, date, datetime, timedelta

import pytest

from service.counters import domain
from service.counters.domain import (
    AdvanceRequest,
    AdvanceResult,
    Calendar,
    Counter,
    CounterChange,
    Format,
    Series,
)
from service.errors import FieldViolation, InvalidArgument, NotFound, OutOfRange, Violations

T0 = datetime(2026, 11, 21, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
KEY = 42


def reported(check, *args) -> list[FieldViolation]:
    violations = Violations()
    check(*args, violations)
    return violations.items


def test_a_negative_advance_to_is_refused():
    assert reported(domain.check_advance, AdvanceRequest("invoice", -1)) == [
        FieldViolation("advance_to", "must be 0 or more", "ADVANCE_TO_NEGATIVE")
    ]


def test_a_padding_out_of_range_names_the_range_and_the_value():
    assert reported(domain.check_advance, AdvanceRequest("invoice", 1, None, 13)) == [
        FieldViolation("padding", "must be 1..12, got 13", "PADDING_OUT_OF_RANGE")
    ]


def test_a_bad_prefix_is_reported_under_the_path_given():
    violations = Violations()
    domain.check_affix("P" * 21 + "\x07", violations, "counters[2].prefix")
    assert violations.items == [
        FieldViolation(
            "counters[2].prefix", "must be at most 20 characters, got 22", "PREFIX_TOO_LONG"
        ),
        FieldViolation(
            "counters[2].prefix", "must contain only printable characters", "PREFIX_NOT_PRINTABLE"
        ),
    ]


def test_an_issue_count_out_of_range_names_the_range_and_the_value():
    assert reported(domain.check_issue_count, 1001) == [
        FieldViolation("count", "must be 1..1000 (0 means 1), got 1001", "COUNT_OUT_OF_RANGE")
    ]


def test_a_batch_size_out_of_range_names_the_range_and_the_size():
    with pytest.raises(InvalidArgument) as caught:
        domain.check_batch_size(51)
    assert caught.value.violations == [
        FieldViolation("counters", "must hold 1..50 counters, got 51", "BATCH_SIZE_OUT_OF_RANGE")
    ]


def test_a_new_counter_without_a_prefix_names_its_type():
    with pytest.raises(InvalidArgument) as caught:
        domain.new_series(AdvanceRequest("quote", 5), T0)
    assert caught.value.violations == [
        FieldViolation(
            "prefix", "is required: the entity has no quote counter yet", "PREFIX_REQUIRED"
        )
    ]


CAL = Calendar(date(2026, 11, 21))
INVOICES = Series("invoice", "", Format("INV-", 7), False, T0, T0)


def stored(series: Series, period: str, value: int, created=T0, updated=T0) -> Counter:
    return series.counter(period, CAL, value, created, updated)


def test_a_missing_counter_is_created_at_advance_to_with_its_series():
    result = domain.advanced(None, None, AdvanceRequest("po", 8812, "PO-", 6), T0, CAL)
    made = Series("po", "", Format("PO-", 6), False, T0, T0)
    assert result == AdvanceResult(
        stored(made, "", 8812), advanced=True, created=True, previous_value=0, new_series=made
    )
    assert result.counter.next_number == "PO-008813"


def test_a_missing_counter_gets_the_default_padding_and_needs_a_prefix():
    made = domain.advanced(None, None, AdvanceRequest("quote", 77, "Q"), T0, CAL).counter
    assert (made.padding, made.next_number) == (7, "Q0000078")
    with pytest.raises(InvalidArgument):
        domain.advanced(None, None, AdvanceRequest("quote", 77), T0, CAL)


def test_a_new_period_of_an_existing_series_needs_no_prefix_and_starts_from_advance_to():
    yearly = Series("invoice", "", Format("INV/{YYYY}/", 5, "", "yearly"), False, T0, T0)
    result = domain.advanced(yearly, None, AdvanceRequest("invoice", 4711, period="2025"), T0, CAL)
    assert (result.created, result.new_series, result.counter.next_number) == (
        True, None, "INV/2025/04712",
    )  # fmt: skip


def test_a_counter_below_advance_to_is_raised_and_keeps_its_format():
    counter = stored(INVOICES, "", 100)
    result = domain.advanced(
        INVOICES, counter, AdvanceRequest("invoice", 342665, "IGNORED", 3), LATER, CAL
    )
    assert result == AdvanceResult(
        stored(INVOICES, "", 342665, T0, LATER), advanced=True, created=False, previous_value=100
    )


def test_a_raised_counter_never_goes_back_in_time():
    counter = stored(INVOICES, "", 100, T0, LATER)
    raised = domain.advanced(INVOICES, counter, AdvanceRequest("invoice", 101), T0, CAL).counter
    assert (raised.current_value, raised.update_time) == (101, LATER)


@pytest.mark.parametrize("advance_to", [100, 99, 0])
def test_a_counter_already_there_or_past_it_is_left_as_it_is(advance_to):
    counter = stored(INVOICES, "", 100)
    result = domain.advanced(INVOICES, counter, AdvanceRequest("invoice", advance_to), LATER, CAL)
    assert result == AdvanceResult(counter, advanced=False, created=False, previous_value=100)


def test_the_audit_row_of_a_created_counter():
    created = domain.advanced(None, None, AdvanceRequest("po", 8812, "PO-"), T0, CAL)
    assert domain.change_of(created, KEY) == CounterChange("po", "create", None, 8812, KEY, T0)


def test_the_audit_row_of_a_raised_counter_names_its_series_and_period():
    monthly = Series("invoice", "EU", Format("E", 3, "", "monthly"), True, T0, T0)
    counter = stored(monthly, "2026-02", 100)
    request = AdvanceRequest("invoice", 150, series="EU", period="2026-02")
    raised = domain.advanced(monthly, counter, request, LATER, CAL)
    assert domain.change_of(raised, KEY) == CounterChange(
        "invoice", "advance", 100, 150, KEY, LATER, "EU", "2026-02"
    )
    assert domain.change_of(raised, None).api_key_id is None


def test_the_audit_row_carries_the_reason_of_the_change():
    created = domain.advanced(None, None, AdvanceRequest("po", 8812, "PO-"), T0, CAL)
    raised = domain.advanced(
        INVOICES, stored(INVOICES, "", 100), AdvanceRequest("invoice", 150), LATER, CAL
    )
    for result in (created, raised):
        assert domain.change_of(result, KEY, "supplied advance number").reason == (
            "supplied advance number"
        )


def test_a_missing_counter_error_says_how_to_create_it():
    error = domain.counter_not_found("rma")
    assert isinstance(error, NotFound)
    assert (error.reason, error.message, error.metadata) == (
        "COUNTER_NOT_FOUND",
        "the entity has no rma counter; AdvanceCounter with a prefix creates it",
        {"counter_type": "rma"},
    )


def test_an_exhausted_counter_error_names_the_count_and_the_limit():
    counter = Counter("po", "", 1, domain.MAX_VALUE - 2, T0, T0)
    error = domain.counter_exhausted(counter, 3)
    assert isinstance(error, OutOfRange)
    assert (error.reason, error.message, error.metadata) == (
        "COUNTER_EXHAUSTED",
        f"issuing 3 more po numbers would pass {2**63 - 1}",
        {"counter_type": "po", "current_value": str(2**63 - 3)},
    )


def test_the_last_number_before_exhaustion_is_still_issued():
    counter = Counter("po", "PO", 1, domain.MAX_VALUE - 1, T0, T0)
    assert counter.next_number == f"PO{domain.MAX_VALUE}"
