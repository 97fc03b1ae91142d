"""The advance state machine, totals included, as pure functions: no database, no gRPC."""

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
    LineFields,
    Ref,
)
from service.entities.settings import EntitySettings
from service.errors import FailedPrecondition, InvalidArgument

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPEN = EntitySettings()
KEY = 42  # the API key making the change
RECEIVED = date(2024, 6, 13)


def line(cents: int) -> LineFields:
    return LineFields(Ref("2200"), txn_amount=cents, dimensions={"location": Ref("CA")})


def fields(*cents: int, rate: str | None = None, currency: str = "") -> AdvanceFields:
    return AdvanceFields(
        customer_id="C",
        payment_date=RECEIVED,
        receipt_date=RECEIVED,
        payment_method="cash",
        txn_currency=currency,
        exchange_rate=Decimal(rate) if rate else None,
        items=tuple(line(c) for c in cents),
    )


def new(*cents: int, state: str = POSTED, **kwargs) -> domain.Advance:
    made = domain.created(fields(*cents, **kwargs), None, state, OPEN, KEY, T0)
    # As stored: a key of its own, its lines keyed.
    lines = tuple(replace(ln, key=100 + ln.line_number) for ln in made.lines)
    return replace(made, key=7, lines=lines)


def stored(advance: domain.Advance) -> domain.Advance:
    """The advance as the repository would read it back: recorded applications keyed."""
    keyed = tuple(
        replace(a, key=1000 + n) if a.key == 0 else a for n, a in enumerate(advance.applications)
    )
    return replace(advance, applications=keyed)


def refused(call, *args) -> str:
    with pytest.raises(FailedPrecondition) as caught:
        call(*args)
    return caught.value.reason


def test_created_is_priced_and_stamped():
    advance = domain.created(
        fields(10000, 333, rate="1.5", currency="EUR"), "A-1", DRAFT, OPEN, KEY, T0
    )
    assert (advance.key, advance.advance_number, advance.state, advance.version) == (
        0,
        "A-1",
        DRAFT,
        1,
    )
    assert [(ln.line_number, ln.key, ln.base_amount) for ln in advance.lines] == [
        (1, 0, 15000),
        (2, 0, 500),  # 333 x 1.5 = 499.5, half up
    ]
    assert (advance.txn_total_entered, advance.total_entered) == (10333, 15500)
    assert (advance.total_paid, advance.txn_total_paid, advance.total_due) == (0, 0, 15500)
    assert (advance.created_by, advance.modified_by, advance.create_time) == (KEY, KEY, T0)
    assert advance.base_currency == "USD" and not advance.ever_applied


def test_created_refuses_what_the_rules_refuse():
    with pytest.raises(InvalidArgument) as caught:
        domain.created(replace(fields(100), customer_id=""), None, POSTED, OPEN, KEY, T0)
    assert [v.reason for v in caught.value.violations] == ["FIELD_REQUIRED"]
    closed = EntitySettings(gl_closed_through=RECEIVED)
    assert refused(domain.created, fields(100), None, POSTED, closed, KEY, T0) == "PERIOD_CLOSED"


def test_submit_posts_a_draft_once():
    draft = new(100, state=DRAFT)
    posted = domain.submitted(draft, OPEN, KEY + 1, T0 + timedelta(hours=1))
    assert (posted.state, posted.version, posted.modified_by, posted.update_time) == (
        POSTED,
        2,
        KEY + 1,
        T0 + timedelta(hours=1),
    )
    assert posted.created_by == KEY and posted.etag != draft.etag
    assert refused(domain.submitted, posted, OPEN, KEY, T0) == "ADVANCE_NOT_DRAFT"
    closed = EntitySettings(gl_closed_through=RECEIVED)
    assert refused(domain.submitted, draft, closed, KEY, T0) == "PERIOD_CLOSED"


def test_apply_partially_then_fully_keeps_the_totals_and_the_state():
    advance = new(30000, 20000)
    first = stored(domain.applied(advance, "INV-1", 12550, date(2024, 6, 20), OPEN, KEY, T0))
    assert (first.state, first.total_paid, first.txn_total_paid, first.total_due) == (
        PARTIALLY_APPLIED,
        12550,
        12550,
        37450,
    )
    assert first.ever_applied and first.version == advance.version + 1
    [application] = first.applications
    assert (application.apply_time, application.applied_by) == (T0, KEY)
    assert (
        refused(domain.applied, first, "INV-2", 37451, date(2024, 6, 21), OPEN, KEY, T0)
        == "AMOUNT_EXCEEDS_DUE"
    )
    full = stored(domain.applied(first, "INV-2", 37450, date(2024, 6, 21), OPEN, KEY, T0))
    assert (full.state, full.total_due, full.txn_total_due) == (FULLY_APPLIED, 0, 0)
    assert [a.invoice_number for a in full.applications] == ["INV-1", "INV-2"]
    assert (
        refused(domain.applied, full, "INV-3", 1, date(2024, 6, 21), OPEN, KEY, T0)
        == "ADVANCE_FULLY_APPLIED"
    )


def test_the_last_application_takes_exactly_what_is_left_in_base_currency():
    advance = new(100, 100, 100, rate="0.3333333333", currency="EUR")  # base 33 + 33 + 33
    assert advance.total_entered == 99
    once = stored(domain.applied(advance, "I-1", 100, date(2024, 6, 20), OPEN, KEY, T0))
    twice = stored(domain.applied(once, "I-2", 100, date(2024, 6, 20), OPEN, KEY, T0))
    last = domain.applied(twice, "I-3", 100, date(2024, 6, 20), OPEN, KEY, T0)
    assert [a.base_amount for a in last.applications] == [33, 33, 33]
    assert (last.total_due, last.state) == (0, FULLY_APPLIED)


def test_unapply_restores_totals_keeps_history_and_respects_each_period():
    advance = new(10000)
    july = stored(domain.applied(advance, "INV-X", 1000, date(2024, 7, 1), OPEN, KEY, T0))
    both = stored(domain.applied(july, "INV-X", 1500, date(2024, 8, 1), OPEN, KEY, T0))
    assert [a.applied_date for a in both.applications] == [date(2024, 7, 1), date(2024, 8, 1)]
    closed = EntitySettings(gl_closed_through=date(2024, 7, 15))
    assert refused(domain.unapplied, both, "INV-X", 0, closed, KEY, T0) == "PERIOD_CLOSED"
    august = both.applications[1]
    later = T0 + timedelta(days=1)
    after = domain.unapplied(both, "", august.key, closed, KEY + 1, later)
    assert [a.key for a in after.applications] == [both.applications[0].key]
    assert (after.total_paid, after.txn_total_paid, after.state) == (1000, 1000, PARTIALLY_APPLIED)
    [history] = after.unapplied
    assert (history.key, history.unapply_time, history.unapplied_by) == (august.key, later, KEY + 1)
    assert (
        refused(domain.unapplied, after, "", august.key, closed, KEY, T0)
        == "APPLICATION_ALREADY_UNAPPLIED"
    )
    assert refused(domain.unapplied, after, "", 999, closed, KEY, T0) == "APPLICATION_NOT_FOUND"
    assert refused(domain.unapplied, after, "INV-Y", 0, OPEN, KEY, T0) == "NOT_APPLIED_TO_INVOICE"
    none_left = domain.unapplied(after, "INV-X", 0, OPEN, KEY, T0)
    assert (none_left.state, none_left.total_paid, none_left.ever_applied) == (POSTED, 0, True)
    assert len(none_left.unapplied) == 2


def test_reverse_only_a_posted_advance_with_nothing_applied():
    advance = new(100)
    gone = domain.reversed_on(advance, date(2024, 6, 20), "duplicate", OPEN, KEY, T0)
    assert (gone.state, gone.reversed_date, gone.reversal_memo) == (
        REVERSED,
        date(2024, 6, 20),
        "duplicate",
    )
    assert refused(domain.reversed_on, gone, date(2024, 6, 20), "", OPEN, KEY, T0) == (
        "ADVANCE_REVERSED"
    )
    draft = new(100, state=DRAFT)
    assert refused(domain.reversed_on, draft, date(2024, 6, 20), "", OPEN, KEY, T0) == (
        "ADVANCE_NOT_POSTED"
    )
    applied = stored(domain.applied(advance, "I", 50, date(2024, 6, 20), OPEN, KEY, T0))
    assert refused(domain.reversed_on, applied, date(2024, 6, 20), "", OPEN, KEY, T0) == (
        "ADVANCE_APPLIED"
    )
    with pytest.raises(InvalidArgument):
        domain.reversed_on(advance, date(2024, 6, 1), "", OPEN, KEY, T0)  # before receipt


def test_update_reprices_replaced_items_and_keeps_the_rest():
    advance = new(10000, 5000)
    same = domain.updated(
        advance, AdvanceFields(description="x"), {"description"}, "", OPEN, KEY, T0
    )
    assert same.lines == advance.lines and same.fields.description == "x"
    patch = AdvanceFields(items=(line(700),))
    repriced = domain.updated(advance, patch, {"items"}, "", OPEN, KEY, T0)
    assert [(ln.key, ln.base_amount) for ln in repriced.lines] == [(0, 700)]  # new lines
    assert (repriced.total_entered, repriced.txn_total_entered) == (700, 700)
    with pytest.raises(InvalidArgument) as caught:
        domain.updated(advance, AdvanceFields(), set(), "OTHER", OPEN, KEY, T0)
    assert caught.value.violations[0].reason == "FIELD_IMMUTABLE"
    applied = stored(domain.applied(advance, "I", 50, date(2024, 6, 20), OPEN, KEY, T0))
    assert refused(domain.updated, applied, patch, {"items"}, "", OPEN, KEY, T0) == (
        "ADVANCE_APPLIED"
    )
    unapplied = domain.unapplied(applied, "I", 0, OPEN, KEY, T0)
    assert refused(domain.updated, unapplied, patch, {"items"}, "", OPEN, KEY, T0) == (
        "ADVANCE_WAS_APPLIED"
    )


def test_applications_are_bounded():
    advance = replace(
        new(10000),
        applications=tuple(
            domain.Application("I", 1, 1, RECEIVED, key=n) for n in range(domain.MAX_APPLICATIONS)
        ),
    )
    assert (
        refused(domain.applied, advance, "I", 1, date(2024, 6, 20), OPEN, KEY, T0)
        == "TOO_MANY_APPLICATIONS"
    )
