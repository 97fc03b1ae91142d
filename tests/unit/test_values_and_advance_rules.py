"""Money, dates and the advance state rules: pure functions, no I/O."""

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from service.advances import domain
from service.entities.settings import EntitySettings
from service.errors import FailedPrecondition, InvalidArgument, Violations
from service.values import convert, format_cents, parse_amount, parse_date, parse_rate

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("500", 50000),
        ("500.5", 50050),
        ("0.01", 1),
        ("007.10", 710),
        ("9999999999999.99", 999999999999999),
    ],
)
def test_amounts_parse_to_exact_cents(text, cents):
    assert parse_amount(text, Violations(), "x") == cents


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1e5", "AMOUNT_INVALID"),
        ("12.345", "AMOUNT_INVALID"),
        ("-3", "AMOUNT_INVALID"),
        ("+3", "AMOUNT_INVALID"),
        (".5", "AMOUNT_INVALID"),
        ("5.", "AMOUNT_INVALID"),
        ("Infinity", "AMOUNT_INVALID"),
        ("0", "AMOUNT_NOT_POSITIVE"),
        ("0.00", "AMOUNT_NOT_POSITIVE"),
        ("10000000000000", "AMOUNT_TOO_LARGE"),
        ("1" * 40, "AMOUNT_INVALID"),
    ],
)
def test_bad_amounts(text, reason):
    violations = Violations()
    assert parse_amount(text, violations, "x") is None
    assert [v.reason for v in violations.items] == [reason]


def test_format_and_convert():
    assert [format_cents(c) for c in (0, 5, 50, 12345, -7)] == [
        "0.00",
        "0.05",
        "0.50",
        "123.45",
        "-0.07",
    ]
    assert convert(1, Decimal("1.5")) == 2  # 1.5 -> 2, half up
    assert convert(3, Decimal("0.5")) == 2  # 1.5 -> 2
    assert convert(10000, Decimal("1.0825")) == 10825
    assert convert(333, Decimal("0.3333333333")) == 111


@pytest.mark.parametrize(
    "text",
    ["2024-02-30", "2023-02-29", "2024-13-01", "20240101", "2024-1-01", "", "2024-01-01T00:00"],
)
def test_bad_dates(text):
    violations = Violations()
    assert parse_date(text, violations, "d") is None
    assert violations.items[0].reason == "DATE_INVALID"


def test_leap_day_and_rates():
    assert parse_date("2024-02-29", Violations(), "d") == date(2024, 2, 29)
    assert parse_rate("1.0825", Violations(), "r") == Decimal("1.0825")
    for bad in ("0", "0.0", "-1", "1e3", "1.12345678901"):
        violations = Violations()
        assert parse_rate(bad, violations, "r") is None, bad


def advance(state=domain.POSTED, **changes) -> domain.Advance:
    fields = domain.AdvanceFields(
        customer_id="C", payment_date=date(2024, 6, 13), receipt_date=date(2024, 6, 13),
        payment_method="cash",
        items=(
            domain.LineFields(
                domain.Ref("2200"), txn_amount=1000, dimensions={"location": domain.Ref("CA")}
            ),
        ),
    )  # fmt: skip
    base = domain.Advance(
        key=7, advance_number=None, state=state, fields=fields, base_currency="USD", lines=(),
        applications=(), total_entered=1000, txn_total_entered=1000, total_paid=0, txn_total_paid=0,
        ever_applied=False, reversed_date=None, reversal_memo="", version=1, create_time=NOW,
        update_time=NOW, created_by=None, modified_by=None,
    )  # fmt: skip
    return replace(base, **changes)


OPEN = EntitySettings()


def reason_of(call, *args) -> str:
    with pytest.raises(FailedPrecondition) as caught:
        call(*args)
    return caught.value.reason


@pytest.mark.parametrize(
    ("state", "ever_applied", "reason"),
    [
        (domain.REVERSED, False, "ADVANCE_REVERSED"),
        (domain.PARTIALLY_APPLIED, True, "ADVANCE_APPLIED"),
        (domain.FULLY_APPLIED, True, "ADVANCE_APPLIED"),
        (domain.POSTED, True, "ADVANCE_WAS_APPLIED"),
    ],
)
def test_only_never_applied_advances_change(state, ever_applied, reason):
    assert (
        reason_of(
            domain.check_changeable, advance(state, ever_applied=ever_applied), OPEN, "updated"
        )
        == reason
    )


def test_changeable_in_an_open_period_only():
    domain.check_changeable(advance(domain.DRAFT), OPEN, "updated")
    closed = EntitySettings(gl_closed_through=date(2024, 6, 13))
    assert reason_of(domain.check_changeable, advance(), closed, "updated") == "PERIOD_CLOSED"


def test_the_state_machine():
    assert reason_of(domain.check_submit, advance(domain.POSTED), OPEN) == "ADVANCE_NOT_DRAFT"
    assert (
        reason_of(domain.check_reverse, advance(domain.DRAFT), date(2024, 7, 1), OPEN)
        == "ADVANCE_NOT_POSTED"
    )
    with pytest.raises(InvalidArgument):
        domain.check_reverse(advance(), date(2024, 6, 12), OPEN)
    assert (
        reason_of(domain.plan_apply, advance(domain.DRAFT), "I", 1, date(2024, 7, 1), OPEN)
        == "ADVANCE_NOT_POSTED"
    )
    assert (
        reason_of(domain.plan_apply, advance(), "I", 1001, date(2024, 7, 1), OPEN)
        == "AMOUNT_EXCEEDS_DUE"
    )
    assert domain.state_for(0, 1000) == domain.POSTED
    assert domain.state_for(1, 1000) == domain.PARTIALLY_APPLIED
    assert domain.state_for(1000, 1000) == domain.FULLY_APPLIED


def test_the_last_application_takes_what_is_left_in_base_currency():
    foreign = advance(
        fields=replace(advance().fields, txn_currency="EUR", exchange_rate=Decimal("1.3333")),
        total_entered=1333, txn_total_entered=1000, total_paid=1332, txn_total_paid=999,
    )  # fmt: skip
    application = domain.plan_apply(foreign, "I", 1, date(2024, 7, 1), OPEN)
    assert (application.amount, application.base_amount) == (1, 1)


def test_check_fields_reports_conditional_rules():
    violations = Violations()
    settings = EntitySettings(ar_automatic_summaries=True, ar_account_labels=True)
    domain.check_fields(advance().fields, settings, violations)
    assert {v.reason for v in violations.items} == {
        "FINANCIAL_ENTITY_OR_UNDEPOSITED_ACCOUNT_REQUIRED", "ACCOUNT_LABEL_REQUIRED",
    }  # fmt: skip


def test_price():
    fields = replace(
        advance().fields,
        exchange_rate=Decimal("1.5"),
        items=tuple(domain.LineFields(txn_amount=cents) for cents in (1, 3, 100)),
    )
    assert domain.price(fields) == domain.Priced((2, 5, 150), 157, 104)
