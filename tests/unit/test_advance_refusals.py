"""service/advances/domain.py, the state rules to the letter: every refusal's reason,
message and metadata, who changed an advance and when, its lines, and the order of its
applications. Pure: no I/O."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from service.advances import domain
from service.advances.domain import (
    DRAFT,
    FULLY_APPLIED,
    PARTIALLY_APPLIED,
    POSTED,
    REVERSED,
    AdvanceFields,
    Application,
    LineFields,
    Ref,
)
from service.entities.settings import EntitySettings
from service.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
OPEN = EntitySettings()
KEY, OTHER_KEY = 42, 43
RECEIVED = date(2024, 7, 15)
# Closed through the end of June: the receipt date (July 15) is in an open period.
JUNE_CLOSED = EntitySettings(gl_closed_through=date(2024, 6, 30))


def line(cents: int, memo: str = "") -> LineFields:
    return LineFields(Ref("2200"), txn_amount=cents, memo=memo, dimensions={"location": Ref("CA")})


def fields(*cents: int, **changes) -> AdvanceFields:
    made = AdvanceFields(
        customer_id="C",
        payment_date=RECEIVED,
        receipt_date=RECEIVED,
        payment_method="cash",
        items=tuple(line(c) for c in cents),
    )
    return replace(made, **changes)


def new(*cents: int, state: str = POSTED, number: str | None = "ADV-1", **changes):
    made = domain.created(fields(*cents, **changes), number, state, OPEN, KEY, T0)
    return replace(
        made, key=7, lines=tuple(replace(ln, key=100 + n) for n, ln in enumerate(made.lines))
    )


def stored(advance: domain.Advance) -> domain.Advance:
    """Recorded applications keyed, as the repository would read them back."""
    keyed = tuple(
        replace(a, key=1000 + n) if a.key == 0 else a for n, a in enumerate(advance.applications)
    )
    return replace(advance, applications=keyed)


def refusal(call, *args) -> tuple[str, str, dict[str, str]]:
    with pytest.raises(FailedPrecondition) as caught:
        call(*args)
    return (caught.value.reason, caught.value.message, caught.value.metadata)


def violations(call, *args) -> list[FieldViolation]:
    with pytest.raises(InvalidArgument) as caught:
        call(*args)
    return caught.value.violations


def in_state(state: str, ever_applied: bool = False) -> domain.Advance:
    return replace(new(1000), state=state, ever_applied=ever_applied)


def closed(day: date, what: str, through: date = date(2024, 6, 30)):
    return (
        "PERIOD_CLOSED",
        f"the general ledger is closed through {through}: {what} {day} falls in a closed period",
        {"gl_closed_through": str(through), "date": str(day)},
    )


# Refusals of the state machine.


APPLIED = "an advance applied to invoices cannot be deleted"
ONCE_APPLIED = "an advance once applied to an invoice (even if unapplied since) cannot be deleted"


@pytest.mark.parametrize(
    ("state", "ever_applied", "reason", "message"),
    [
        (REVERSED, False, "ADVANCE_REVERSED", "a reversed advance cannot be deleted"),
        (PARTIALLY_APPLIED, True, "ADVANCE_APPLIED", APPLIED),
        (FULLY_APPLIED, True, "ADVANCE_APPLIED", APPLIED),
        (POSTED, True, "ADVANCE_WAS_APPLIED", ONCE_APPLIED),
    ],
)
def test_why_an_advance_cannot_be_changed(state, ever_applied, reason, message):
    advance = in_state(state, ever_applied)
    assert refusal(domain.check_changeable, advance, OPEN, "deleted") == (
        reason,
        message,
        {"key": "7", "state": state},
    )


def test_a_change_in_a_closed_period_names_the_receipt_date():
    settings = EntitySettings(gl_closed_through=RECEIVED)
    assert refusal(domain.check_changeable, new(100), settings, "deleted") == closed(
        RECEIVED, "its receipt date", RECEIVED
    )
    assert refusal(domain.check_submit, new(100, state=DRAFT), settings) == closed(
        RECEIVED, "its receipt date", RECEIVED
    )


def test_only_a_draft_is_submitted():
    assert refusal(domain.check_submit, new(100), OPEN) == (
        "ADVANCE_NOT_DRAFT",
        "only a DRAFT advance can be submitted",
        {"key": "7", "state": POSTED},
    )


@pytest.mark.parametrize(
    ("state", "reason", "message"),
    [
        (REVERSED, "ADVANCE_REVERSED", "the advance is already reversed"),
        (
            PARTIALLY_APPLIED,
            "ADVANCE_APPLIED",
            "an advance applied to invoices cannot be reversed: unapply it first",
        ),
        (DRAFT, "ADVANCE_NOT_POSTED", "only a POSTED advance can be reversed"),
    ],
)
def test_why_an_advance_cannot_be_reversed(state, reason, message):
    assert refusal(domain.check_reverse, in_state(state), RECEIVED, OPEN) == (
        reason,
        message,
        {"key": "7", "state": state},
    )


def test_a_reversal_before_the_receipt_date_or_in_a_closed_period_is_refused():
    advance = new(100)
    assert violations(domain.check_reverse, advance, date(2024, 7, 14), OPEN) == [
        FieldViolation(
            "reversed_date",
            "must not be before the receipt date 2024-07-15",
            "DATE_BEFORE_RECEIPT_DATE",
        )
    ]
    day = date(2024, 7, 20)
    settings = EntitySettings(gl_closed_through=day)
    # The advance's own receipt date is not checked for a reversal: only the reversal's.
    assert refusal(domain.check_reverse, advance, day, settings) == closed(
        day, "the reversal date", day
    )


def test_a_reversal_on_the_receipt_date_itself_is_taken():
    reversed_ = domain.reversed_on(new(100), RECEIVED, "wrong customer", JUNE_CLOSED, OTHER_KEY, T1)
    assert (reversed_.state, reversed_.reversed_date, reversed_.reversal_memo) == (
        REVERSED,
        RECEIVED,
        "wrong customer",
    )
    assert (reversed_.version, reversed_.modified_by, reversed_.update_time) == (2, OTHER_KEY, T1)


@pytest.mark.parametrize(
    ("state", "reason", "message"),
    [
        (DRAFT, "ADVANCE_NOT_POSTED", "a DRAFT advance cannot be applied: submit it first"),
        (REVERSED, "ADVANCE_REVERSED", "a reversed advance cannot be applied"),
        (FULLY_APPLIED, "ADVANCE_FULLY_APPLIED", "nothing is left to apply"),
    ],
)
def test_why_an_advance_cannot_be_applied(state, reason, message):
    assert refusal(domain.plan_apply, in_state(state), "I", 1, RECEIVED, OPEN) == (
        reason,
        message,
        {"key": "7", "state": state},
    )


def test_applications_are_bounded_unapplied_ones_included():
    history = tuple(Application("I", 1, 1, RECEIVED, key=n) for n in range(500))
    advance = replace(new(10000), applications=history[:250], unapplied=history[250:])
    assert refusal(domain.plan_apply, advance, "I", 1, RECEIVED, OPEN) == (
        "TOO_MANY_APPLICATIONS",
        "an advance holds at most 500 applications, unapplied ones included",
        {"key": "7", "state": POSTED},
    )
    fewer = replace(advance, unapplied=history[250:499])
    assert domain.plan_apply(fewer, "I", 1, RECEIVED, OPEN).amount == 1


def test_an_application_before_the_receipt_date_or_in_a_closed_period_is_refused():
    advance = new(1000)
    assert violations(domain.plan_apply, advance, "I", 1, date(2024, 7, 1), OPEN) == [
        FieldViolation(
            "applied_date",
            "must not be before the receipt date 2024-07-15",
            "DATE_BEFORE_RECEIPT_DATE",
        )
    ]
    day = date(2024, 8, 1)
    settings = EntitySettings(gl_closed_through=day)
    assert refusal(domain.plan_apply, advance, "I", 1, day, settings) == closed(
        day, "the application date", day
    )


def test_an_application_on_the_receipt_date_in_an_open_period_is_taken():
    application = domain.plan_apply(new(1000), "INV-9", 400, RECEIVED, JUNE_CLOSED)
    assert application == Application("INV-9", 400, 400, RECEIVED)


def test_more_than_is_due_is_refused_with_what_is_due():
    advance = stored(domain.applied(new(1000), "I", 250, RECEIVED, OPEN, KEY, T0))
    assert refusal(domain.plan_apply, advance, "I", 751, RECEIVED, OPEN) == (
        "AMOUNT_EXCEEDS_DUE",
        "the amount is more than the 7.50 still due",
        {"key": "7", "total_txn_amount_due": "7.50"},
    )


# Unapplying.


def two_applications() -> domain.Advance:
    advance = new(10000)
    once = stored(domain.applied(advance, "INV-A", 1000, date(2024, 7, 20), OPEN, KEY, T0))
    return stored(domain.applied(once, "INV-B", 2000, date(2024, 8, 20), OPEN, KEY, T0))


def test_unapplying_an_application_that_does_not_exist():
    assert refusal(domain.plan_unapply, two_applications(), "", 999, OPEN) == (
        "APPLICATION_NOT_FOUND",
        "application 999 of the advance does not exist",
        {"key": "7", "application_key": "999"},
    )


def test_unapplying_an_application_twice():
    advance = two_applications()
    once = domain.unapplied(advance, "", 1001, OPEN, KEY, T0)
    assert refusal(domain.plan_unapply, once, "", 1001, OPEN) == (
        "APPLICATION_ALREADY_UNAPPLIED",
        "application 1001 of the advance is already unapplied",
        {"key": "7", "application_key": "1001"},
    )


def test_an_application_named_by_key_and_invoice_must_be_to_that_invoice():
    advance = two_applications()
    assert [a.key for a in domain.plan_unapply(advance, "INV-B", 1001, OPEN)] == [1001]
    assert refusal(domain.plan_unapply, advance, "INV-A", 1001, OPEN) == (
        "NOT_APPLIED_TO_INVOICE",
        "application 1001 is to invoice 'INV-B', not 'INV-A'",
        {"key": "7", "invoice_number": "INV-A"},
    )


def test_unapplying_an_invoice_the_advance_is_not_applied_to():
    assert refusal(domain.plan_unapply, two_applications(), "INV-Z", 0, OPEN) == (
        "NOT_APPLIED_TO_INVOICE",
        "the advance is not applied to invoice 'INV-Z'",
        {"key": "7", "invoice_number": "INV-Z"},
    )


def test_an_application_in_a_closed_period_cannot_be_unapplied():
    settings = EntitySettings(gl_closed_through=date(2024, 7, 31))
    assert refusal(domain.plan_unapply, two_applications(), "INV-A", 0, settings) == (
        "PERIOD_CLOSED",
        "the general ledger is closed through 2024-07-31: application 1000 to 'INV-A', "
        "dated 2024-07-20, falls in a closed period",
        {"gl_closed_through": "2024-07-31", "date": "2024-07-20", "application_key": "1000"},
    )


def test_applying_and_unapplying_record_who_and_when():
    advance = new(10000)
    applied = domain.applied(advance, "INV-A", 1000, RECEIVED, OPEN, OTHER_KEY, T1)
    assert (applied.version, applied.modified_by, applied.update_time) == (2, OTHER_KEY, T1)
    assert (applied.created_by, applied.create_time) == (KEY, T0)
    later = T1 + timedelta(minutes=5)
    unapplied = domain.unapplied(stored(applied), "INV-A", 0, OPEN, KEY, later)
    assert (unapplied.version, unapplied.modified_by, unapplied.update_time) == (3, KEY, later)


# Creating and updating.


def test_a_new_advance_starts_unapplied_unreversed_and_stamped():
    advance = domain.created(fields(500), None, DRAFT, OPEN, KEY, T0)
    assert advance.ever_applied is False
    assert (advance.reversed_date, advance.reversal_memo, advance.unapplied) == (None, "", ())
    assert (advance.create_time, advance.update_time) == (T0, T0)


def test_a_new_advance_in_a_closed_period_names_the_receipt_date():
    settings = EntitySettings(gl_closed_through=RECEIVED)
    assert refusal(domain.created, fields(500), None, POSTED, settings, KEY, T0) == closed(
        RECEIVED, "the receipt date", RECEIVED
    )


def test_a_new_advance_is_made_in_an_open_period_after_a_closed_one():
    advance = domain.created(fields(500), None, POSTED, JUNE_CLOSED, KEY, T0)
    assert advance.total_entered == 500


def test_lines_carry_their_items_numbered_from_1():
    items = (line(100, "first"), line(200, "second"))
    advance = domain.created(fields(items=items), None, DRAFT, OPEN, KEY, T0)
    assert [(ln.line_number, ln.fields.memo, ln.base_amount) for ln in advance.lines] == [
        (1, "first", 100),
        (2, "second", 200),
    ]
    assert [ln.fields for ln in advance.lines] == list(items)


def test_an_update_records_who_and_when():
    advance = new(100)
    patch = AdvanceFields(description="x")
    changed = domain.updated(advance, patch, {"description"}, "", OPEN, OTHER_KEY, T1)
    assert (changed.version, changed.modified_by, changed.update_time) == (2, OTHER_KEY, T1)


def test_an_update_may_send_the_advance_number_it_has_or_none():
    advance = new(100, number="ADV-1")
    patch, names = AdvanceFields(description="x"), {"description"}
    assert domain.updated(advance, patch, names, "ADV-1", OPEN, KEY, T1).fields.description == "x"
    assert domain.updated(advance, patch, names, "", OPEN, KEY, T1).fields.description == "x"
    assert violations(domain.updated, advance, patch, names, "ADV-2", OPEN, KEY, T1) == [
        FieldViolation(
            "advance.advance_number", "cannot change once the advance exists", "FIELD_IMMUTABLE"
        )
    ]
    unnumbered = new(100, number=None)
    assert violations(domain.updated, unnumbered, patch, names, "ADV-2", OPEN, KEY, T1)[0] == (
        FieldViolation(
            "advance.advance_number", "cannot change once the advance exists", "FIELD_IMMUTABLE"
        )
    )


def test_an_update_is_checked_against_the_advances_own_base_currency():
    advance = replace(new(100), base_currency="EUR")
    patch = AdvanceFields(txn_currency="EUR")
    assert domain.updated(
        advance, patch, {"txn_currency"}, "", OPEN, KEY, T1
    ).fields.txn_currency == ("EUR")


def test_an_update_refused_as_a_change_names_updated():
    assert refusal(
        domain.updated, in_state(REVERSED), AdvanceFields(), set(), "", OPEN, KEY, T1
    ) == (
        "ADVANCE_REVERSED",
        "a reversed advance cannot be updated",
        {"key": "7", "state": REVERSED},
    )


def test_an_update_may_not_move_the_receipt_date_into_a_closed_period():
    advance = new(100)
    moved = AdvanceFields(receipt_date=date(2024, 6, 20))
    assert refusal(
        domain.updated, advance, moved, {"receipt_date"}, "", JUNE_CLOSED, KEY, T1
    ) == closed(date(2024, 6, 20), "the new receipt date")
    later = AdvanceFields(receipt_date=date(2024, 7, 16))
    kept = domain.updated(advance, later, {"receipt_date"}, "", JUNE_CLOSED, KEY, T1)
    assert kept.fields.receipt_date == date(2024, 7, 16)


def test_an_update_keeps_the_lines_only_when_the_items_are_the_same():
    advance = new(100, 200)
    same = domain.updated(
        advance, AdvanceFields(items=advance.fields.items), {"items"}, "", OPEN, KEY, T1
    )
    assert same.lines == advance.lines
    # Same amounts, another memo: new lines (keys 0 until stored) carrying the new items.
    items = (line(100, "new memo"), line(200))
    changed = domain.updated(advance, AdvanceFields(items=items), {"items"}, "", OPEN, KEY, T1)
    assert [(ln.key, ln.fields) for ln in changed.lines] == [(0, items[0]), (0, items[1])]


def test_an_update_reprices_items_when_the_rate_changes():
    made = new(100, txn_currency="EUR", exchange_rate=Decimal("2"))
    assert [ln.base_amount for ln in made.lines] == [200]
    rate = AdvanceFields(exchange_rate=Decimal("3"))
    changed = domain.updated(made, rate, {"exchange_rate"}, "", OPEN, KEY, T1)
    assert [(ln.key, ln.base_amount) for ln in changed.lines] == [(0, 300)]  # new lines
    assert (changed.total_entered, changed.txn_total_entered) == (300, 100)


# Applications in order, and a missing advance.


def test_applications_are_ordered_by_date_then_by_when_recorded_unrecorded_last():
    day = date(2024, 8, 1)
    recorded_late = Application("A", 1, 1, day, key=1, apply_time=T1)
    recorded_early = Application("B", 1, 1, day, key=2, apply_time=T0)
    unrecorded = Application("C", 1, 1, day)
    earlier_day = Application("D", 1, 1, date(2024, 7, 31), key=9, apply_time=T1)
    ordered = domain.in_date_order([unrecorded, recorded_late, recorded_early, earlier_day])
    assert [a.invoice_number for a in ordered] == ["D", "B", "A", "C"]


def test_a_missing_advance_is_not_found_by_its_key():
    error = domain.advance_not_found(12)
    assert isinstance(error, NotFound)
    assert (error.reason, error.message, error.metadata) == (
        "ADVANCE_NOT_FOUND",
        "no advance with key 12",
        {"key": "12"},
    )
