"""Series, periods, date tokens and formats (service/counters/domain.py): which period a
date falls in, what a number looks like, and every refusal. Pure: no I/O."""

from datetime import UTC, date, datetime, timedelta

import pytest

from service.counters import domain
from service.counters.domain import AdvanceRequest, Calendar, Format, Series
from service.errors import FailedPrecondition, FieldViolation, InvalidArgument, Violations

T0 = datetime(2026, 1, 2, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


def reported(check, value) -> list[tuple[str, str]]:
    violations = Violations()
    check(value, violations, "period")
    return [(v.field, v.reason) for v in violations.items]


@pytest.mark.parametrize(
    ("start", "day", "fiscal_year"),
    [
        (1, date(2025, 12, 31), 2025),
        (1, date(2026, 1, 1), 2026),
        (7, date(2025, 6, 30), 2025),
        (7, date(2025, 7, 1), 2026),
        (7, date(2026, 6, 30), 2026),
        (12, date(2025, 11, 30), 2025),
        (12, date(2025, 12, 1), 2026),
        (2, date(2024, 2, 29), 2025),
    ],
)
def test_a_fiscal_year_is_named_by_the_calendar_year_it_ends_in(start, day, fiscal_year):
    calendar = Calendar(date(2026, 1, 1), start)
    assert calendar.fiscal_year(day) == fiscal_year
    assert calendar.period_of("fiscal_yearly", day) == f"FY{fiscal_year}"


@pytest.mark.parametrize(
    ("reset", "day", "period"),
    [
        ("never", date(2025, 6, 15), ""),
        ("yearly", date(2025, 12, 31), "2025"),
        ("yearly", date(2026, 1, 1), "2026"),
        ("monthly", date(2025, 6, 30), "2025-06"),
        ("monthly", date(2025, 7, 1), "2025-07"),
        ("yearly", date(1, 1, 1), "0001"),
    ],
)
def test_a_date_picks_its_period(reset, day, period):
    assert Calendar(date(2026, 1, 1)).period_of(reset, day) == period


@pytest.mark.parametrize(
    ("reset", "period", "start", "first"),
    [
        ("yearly", "2025", 1, date(2025, 1, 1)),
        ("monthly", "2025-06", 1, date(2025, 6, 1)),
        ("fiscal_yearly", "FY2026", 1, date(2026, 1, 1)),
        ("fiscal_yearly", "FY2026", 7, date(2025, 7, 1)),
        ("never", "", 7, date(2026, 3, 4)),  # today: the counter has no periods
    ],
)
def test_a_period_starts_on_its_first_day(reset, period, start, first):
    calendar = Calendar(date(2026, 3, 4), start)
    assert calendar.first_day(reset, period) == first
    if reset != "never":
        assert calendar.period_of(reset, first) == period
        assert calendar.period_of(reset, first - timedelta(days=1)) != period


def test_every_day_of_a_fiscal_year_falls_in_it_and_no_other():
    calendar = Calendar(date(2026, 1, 1), 4)
    day, seen = date(2024, 4, 1), dict[str, list[date]]()
    while day < date(2026, 4, 1):
        seen.setdefault(calendar.period_of("fiscal_yearly", day), []).append(day)
        day += timedelta(days=1)
    assert {p: (d[0], d[-1]) for p, d in seen.items()} == {
        "FY2025": (date(2024, 4, 1), date(2025, 3, 31)),
        "FY2026": (date(2025, 4, 1), date(2026, 3, 31)),
    }


def test_the_last_fiscal_year_that_can_be_named_is_fy9999():
    calendar = Calendar(date(2026, 1, 1), 7)
    assert calendar.in_range("fiscal_yearly", date(9999, 6, 30))
    assert not calendar.in_range("fiscal_yearly", date(9999, 7, 1))
    assert calendar.in_range("yearly", date(9999, 12, 31))


def test_tokens_render_from_the_day_and_its_fiscal_year():
    assert domain.render("INV/{YYYY}/{MM}-{YY}/{FY}", date(2025, 8, 3), 2026) == (
        "INV/2025/08-25/2026"
    )
    assert domain.render("NO-TOKENS", date(2025, 8, 3), 2026) == "NO-TOKENS"
    assert domain.render("{YY}", date(2009, 1, 1), 2009) == "09"


def test_a_number_is_rendered_prefix_padded_value_and_suffix():
    series = Series("invoice", "", Format("INV/{YYYY}/", 5, "-{FY}", "yearly"), False, T0, T0)
    counter = series.counter("2025", Calendar(date(2026, 1, 1), 7), 4711)
    assert counter.day == date(2025, 1, 1)  # the period's first day, where there is no date
    assert counter.next_number == "INV/2025/04712-2025"
    issued = counter.dated(date(2025, 12, 31), Calendar(date(2026, 1, 1), 7))
    assert issued.next_number == "INV/2025/04712-2026"
    assert issued.number(123456) == "INV/2025/123456-2026"  # padding is a minimum


def test_a_counter_that_never_resets_renders_its_tokens_from_today():
    series = Series("order", "", Format("SO{YY}-", 4), False, T0, T0)
    assert series.counter("", Calendar(date(2031, 5, 6))).next_number == "SO31-0001"


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        ("INV/{YYYY}/", []),
        ("{YY}{MM}{FY}{YYYY}", []),
        ("{}", ["TOKEN_UNKNOWN"]),
        ("{DD}", ["TOKEN_UNKNOWN"]),
        ("{yyyy}", ["TOKEN_UNKNOWN"]),
        ("INV{", ["TOKEN_UNKNOWN"]),
        ("INV}", ["TOKEN_UNKNOWN"]),
        ("{{YYYY}}", ["TOKEN_UNKNOWN"]),
        ("x" * 21, ["PREFIX_TOO_LONG"]),
        ("A\tB", ["PREFIX_NOT_PRINTABLE"]),
    ],
)
def test_prefix_and_suffix_hold_printable_text_and_only_the_date_tokens(text, reasons):
    violations = Violations()
    domain.check_affix(text, violations, "suffix")
    assert [v.reason for v in violations.items] == reasons


def test_an_unknown_token_is_named_with_the_tokens_there_are():
    violations = Violations()
    domain.check_affix("INV-{DD}-", violations, "counters[1].prefix")
    assert violations.items == [
        FieldViolation(
            "counters[1].prefix",
            "'{DD}' is not a date token: use {YYYY}, {YY}, {MM}, {FY}",
            "TOKEN_UNKNOWN",
        )
    ]


@pytest.mark.parametrize(
    ("series", "ok"),
    [
        ("", True),
        ("EU", True),
        ("branch-01.returns_2", True),
        ("x" * 40, True),
        ("x" * 41, False),
        ("EU/1", False),
        ("EU 1", False),
        ("Ünïcode", False),
        ("~", False),
    ],
)
def test_series_names(series, ok):
    violations = Violations()
    domain.check_series(series, violations, "series")
    assert (violations.items == []) == ok
    assert ok or violations.items[0].reason == "SERIES_INVALID"


@pytest.mark.parametrize(
    ("reset", "period", "reason"),
    [
        ("never", "", None),
        ("never", "2025", "PERIOD_INVALID"),
        ("yearly", "2025", None),
        ("yearly", "", "PERIOD_REQUIRED"),
        ("yearly", "2025-06", "PERIOD_INVALID"),
        ("yearly", "0000", "PERIOD_INVALID"),
        ("yearly", "FY2025", "PERIOD_INVALID"),
        ("monthly", "2025-06", None),
        ("monthly", "2025-13", "PERIOD_INVALID"),
        ("monthly", "2025-6", "PERIOD_INVALID"),
        ("monthly", "2025", "PERIOD_INVALID"),
        ("fiscal_yearly", "FY2025", None),
        ("fiscal_yearly", "FY0000", "PERIOD_INVALID"),
        ("fiscal_yearly", "fy2025", "PERIOD_INVALID"),
        ("fiscal_yearly", "", "PERIOD_REQUIRED"),
    ],
)
def test_a_period_must_have_its_resets_form(reset, period, reason):
    if reason is None:
        domain.check_period(reset, period, "invoice", "EU", "period")
        return
    with pytest.raises(InvalidArgument) as caught:
        domain.check_period(reset, period, "invoice", "EU", "counters[2].period")
    [violation] = caught.value.violations
    assert (violation.field, violation.reason) == ("counters[2].period", reason)
    assert "invoice series 'EU'" in violation.description


def test_the_words_of_period_refusals():
    with pytest.raises(InvalidArgument) as caught:
        domain.check_period("fiscal_yearly", "", "invoice", "", "period")
    assert caught.value.violations[0].description == (
        "is required: the invoice counter resets fiscal yearly; name the period, "
        'a fiscal year, "FY2025"'
    )
    with pytest.raises(InvalidArgument) as caught:
        domain.check_period("never", "2025", "po", "", "period")
    assert caught.value.violations[0].description == "must be empty: the po counter never resets"


@pytest.mark.parametrize("period", ["2025", "2025-01", "FY2025", ""])
def test_a_period_of_some_form_passes_the_first_check(period):
    assert reported(domain.check_period_text, period) == []


@pytest.mark.parametrize("period", ["25", "2025/06", "Q1-2025", "FY25", "x" * 1000])
def test_a_period_of_no_form_is_refused_before_anything_is_read(period):
    assert reported(domain.check_period_text, period) == [("period", "PERIOD_INVALID")]


def test_a_request_is_checked_whole():
    request = AdvanceRequest(
        "invoice", -1, prefix="{X}", padding=0, series="bad series", period="June", suffix="x" * 30
    )
    violations = Violations()
    domain.check_advance(request, violations)
    assert {(v.field, v.reason) for v in violations.items} == {
        ("advance_to", "ADVANCE_TO_NEGATIVE"),
        ("prefix", "TOKEN_UNKNOWN"),
        ("suffix", "PREFIX_TOO_LONG"),
        ("padding", "PADDING_OUT_OF_RANGE"),
        ("series", "SERIES_INVALID"),
        ("period", "PERIOD_INVALID"),
    }


CAL = Calendar(date(2026, 1, 2))
YEARLY = Series("invoice", "", Format("INV/{YYYY}/", 5, "", "yearly"), False, T0, T0)


def test_a_new_series_takes_suffix_and_reset_from_the_request():
    request = AdvanceRequest(
        "invoice", 7, "R-", 4, series="returns", period="2025-06", suffix="/{YY}", reset="monthly"
    )
    result = domain.advanced(None, None, request, T0, CAL)
    assert result.new_series == Series(
        "invoice", "returns", Format("R-", 4, "/{YY}", "monthly"), False, T0, T0
    )
    assert (result.counter.period, result.counter.next_number) == ("2025-06", "R-0008/25")


def test_an_existing_series_keeps_its_reset_so_the_period_must_fit_it():
    request = AdvanceRequest("invoice", 9, reset="monthly", period="2025-06")
    with pytest.raises(InvalidArgument) as caught:
        domain.advanced(YEARLY, None, request, T0, CAL)
    assert caught.value.violations[0].reason == "PERIOD_INVALID"


def test_the_expected_value_guards_the_change():
    counter = YEARLY.counter("2025", CAL, 4711, T0, T0)
    request = AdvanceRequest("invoice", 5000, period="2025", expected_current_value=4700)
    with pytest.raises(FailedPrecondition) as caught:
        domain.advanced(YEARLY, counter, request, LATER, CAL)
    assert caught.value.reason == "COUNTER_VALUE_CHANGED"
    assert caught.value.metadata["current_value"] == "4711"
    assert caught.value.metadata["expected_current_value"] == "4700"
    ok = AdvanceRequest("invoice", 5000, period="2025", expected_current_value=4711)
    assert domain.advanced(YEARLY, counter, ok, LATER, CAL).counter.current_value == 5000


def test_a_missing_counter_is_expected_at_zero():
    fresh = AdvanceRequest("invoice", 10, period="2026", expected_current_value=0)
    assert domain.advanced(YEARLY, None, fresh, T0, CAL).created
    stale = AdvanceRequest("invoice", 10, period="2026", expected_current_value=3)
    with pytest.raises(FailedPrecondition):
        domain.advanced(YEARLY, None, stale, T0, CAL)


def test_bad_input_is_reported_before_a_changed_value():
    request = AdvanceRequest("invoice", 10, period="", expected_current_value=3)
    with pytest.raises(InvalidArgument):
        domain.advanced(YEARLY, None, request, T0, CAL)


def test_an_update_changes_the_format_and_is_audited_in_words():
    after = domain.updated(YEARLY, {"prefix": "F-{YYYY}-", "padding": 6}, LATER)
    assert after.format == Format("F-{YYYY}-", 6, "", "yearly")
    assert after.update_time == LATER
    change = domain.format_change(YEARLY, after, 7)
    assert (change.action, change.counter_type, change.api_key_id, change.time) == (
        "update", "invoice", 7, LATER,
    )  # fmt: skip
    assert change.reason == "prefix 'INV/{YYYY}/' -> 'F-{YYYY}-'; padding 5 -> 6"


def test_an_update_that_changes_nothing_leaves_the_series_as_it_was():
    assert domain.updated(YEARLY, {"prefix": "INV/{YYYY}/", "reset": "yearly"}, LATER) is YEARLY


def test_the_reset_is_fixed_once_a_number_was_issued():
    in_use = Series("invoice", "EU", Format("E", 3, "", "yearly"), True, T0, T0)
    with pytest.raises(FailedPrecondition) as caught:
        domain.updated(in_use, {"reset": "monthly"}, LATER)
    assert caught.value.reason == "COUNTER_IN_USE"
    assert caught.value.metadata == {"counter_type": "invoice", "series": "EU"}
    # The same reset, or another field, is still fine.
    assert domain.updated(in_use, {"reset": "yearly", "suffix": "-x"}, LATER).format.suffix == "-x"
    assert domain.updated(YEARLY, {"reset": "monthly"}, LATER).format.reset == "monthly"


# The exact words and metadata of every refusal, and the details the other tiers cannot
# see (make mutate asked for each).


def test_the_first_day_of_a_two_digit_month_and_of_the_first_fiscal_year():
    assert Calendar(date(2026, 1, 1)).first_day("monthly", "2025-10") == date(2025, 10, 1)
    assert Calendar(date(2026, 1, 1), 7).first_day("fiscal_yearly", "FY0001") == date(1, 7, 1)


def test_a_counter_knows_its_reset_and_the_day_it_is_written_with():
    counter = YEARLY.counter("2025", CAL)
    assert (counter.reset, counter.day) == ("yearly", date(2025, 1, 1))
    dated = counter.dated(date(2025, 8, 9), Calendar(date(2026, 1, 1), 7))
    assert (dated.day, dated.fiscal_year) == (date(2025, 8, 9), 2026)


def test_a_brace_left_over_beside_a_token_is_named_as_it_stands():
    violations = Violations()
    domain.check_affix("{{YYYY}", violations, "prefix")
    assert violations.items[0].description.startswith("'{' is not a date token")


def test_the_words_of_series_and_period_form_refusals():
    violations = Violations()
    domain.check_series("a b", violations, "series")
    domain.check_period_text("Q1", violations, "period")
    assert [v.description for v in violations.items] == [
        "must be 1..40 characters of A-Z a-z 0-9 . _ -; got 'a b'",
        'must be a year "2025", a month "2025-06" or a fiscal year "FY2025"; got \'Q1\'',
    ]
    with pytest.raises(InvalidArgument) as caught:
        domain.check_period("fiscal_yearly", "2025", "order", "", "period")
    assert caught.value.violations[0].description == (
        "must be a fiscal year, \"FY2025\": the order counter resets fiscal yearly; got '2025'"
    )


def test_a_refused_advance_names_the_series_and_the_period_field():
    with pytest.raises(InvalidArgument) as caught:
        domain.new_series(AdvanceRequest("invoice", 1, series="EU"), T0)
    assert caught.value.violations[0].description == (
        "is required: the entity has no invoice series 'EU' counter yet"
    )
    eu = Series("invoice", "EU", Format("E", 3, "", "monthly"), False, T0, T0)
    with pytest.raises(InvalidArgument) as caught:
        domain.advanced(eu, None, AdvanceRequest("invoice", 1, series="EU"), T0, CAL)
    [violation] = caught.value.violations
    assert (violation.field, violation.reason) == ("period", "PERIOD_REQUIRED")
    assert "the invoice series 'EU' counter resets monthly" in violation.description


def test_a_created_counter_is_audited_with_its_series_and_period():
    request = AdvanceRequest("invoice", 5, "E", series="EU", period="2025", reset="yearly")
    created = domain.advanced(None, None, request, T0, CAL)
    change = domain.change_of(created, 3)
    assert (change.series, change.period, change.action, change.old_value) == (
        "EU", "2025", "create", None,
    )  # fmt: skip


def test_the_words_of_an_in_use_refusal_and_of_a_format_change():
    in_use = Series("invoice", "EU", Format("E", 3, "", "yearly"), True, T0, T0)
    with pytest.raises(FailedPrecondition) as caught:
        domain.updated(in_use, {"reset": "never"}, LATER)
    assert caught.value.message == (
        "the invoice series 'EU' counter has issued numbers, so its reset is fixed; "
        "create a new series to number differently"
    )
    after = domain.updated(in_use, {"suffix": "-x"}, LATER)
    assert domain.format_change(in_use, after, None) == domain.CounterChange(
        "invoice", "update", None, 0, None, LATER, "EU", "", "suffix '' -> '-x'"
    )


def test_the_words_and_metadata_of_a_missing_or_full_counter_of_a_series():
    missing = domain.counter_not_found("po", "EU")
    assert (missing.message, missing.metadata) == (
        "the entity has no po series 'EU' counter; AdvanceCounter with a prefix creates it",
        {"counter_type": "po", "series": "EU"},
    )
    full = YEARLY.counter("2025", CAL, domain.MAX_VALUE)
    eu_full = domain.counter_exhausted(domain.Counter(
        "po", "", 1, 5, T0, T0, "EU", "2025-06", "", "monthly"), 2)  # fmt: skip
    assert eu_full.metadata == {
        "counter_type": "po", "current_value": "5", "series": "EU", "period": "2025-06",
    }  # fmt: skip
    assert eu_full.message.startswith("issuing 2 more po series 'EU' numbers")
    assert domain.counter_exhausted(full, 1).metadata["period"] == "2025"


def test_the_words_and_metadata_of_a_changed_value():
    request = AdvanceRequest("invoice", 9, series="EU", period="2025", expected_current_value=3)
    error = domain.counter_value_changed(request, 7)
    assert error.message == (
        "the invoice series 'EU' counter of 2025 is at 7, not the expected 3; nothing was changed"
    )
    assert error.metadata == {
        "counter_type": "invoice", "series": "EU", "period": "2025", "current_value": "7",
        "expected_current_value": "3",
    }  # fmt: skip
    plain = domain.counter_value_changed(AdvanceRequest("po", 9, expected_current_value=0), 4)
    assert plain.message == "the po counter is at 4, not the expected 0; nothing was changed"


def test_the_words_of_a_date_past_the_last_fiscal_year():
    error = domain.date_out_of_range("document_date")
    assert [(v.field, v.description, v.reason) for v in error.violations] == [
        ("document_date", "falls in a fiscal year after FY9999", "DATE_INVALID")
    ]


# Voids and events.

VOID = domain.VoidRequest("invoice", "EU", "2025", 101, 104, "document failed")


def test_a_void_of_issued_numbers_passes_across_issues():
    domain.check_voidable(VOID, issued=[(95, 102), (103, 103), (104, 110)], voided=[(90, 100)])


def test_values_never_issued_are_named_as_runs():
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_voidable(VOID, issued=[(102, 102)], voided=[])
    assert caught.value.reason == "NUMBER_NOT_ISSUED"
    assert caught.value.metadata == {"values": "101, 103-104", "count": "3"}
    assert caught.value.message == (
        "3 of these invoice series 'EU' numbers of 2025 were never issued by IssueNumbers "
        "(not yet, or skipped by an advance): 101, 103-104"
    )


def test_values_voided_before_are_named_and_issuing_is_checked_first():
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_voidable(VOID, issued=[(100, 110)], voided=[(104, 106), (90, 101)])
    assert caught.value.reason == "NUMBER_ALREADY_VOIDED"
    assert caught.value.metadata == {"values": "101, 104", "count": "2"}
    assert caught.value.message == (
        "2 of these invoice series 'EU' numbers of 2025 are voided already: 101, 104"
    )
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_voidable(VOID, issued=[(101, 103)], voided=[(101, 101)])
    assert caught.value.reason == "NUMBER_NOT_ISSUED"


def test_a_long_list_of_runs_is_cut_after_twenty():
    many = domain.VoidRequest("po", "", "", 1, 100, "x")
    with pytest.raises(FailedPrecondition) as caught:
        domain.check_voidable(many, issued=[(v, v) for v in range(2, 101, 2)], voided=[])
    values = caught.value.metadata["values"]
    assert values.startswith("1, 3, 5") and values.endswith("39, ...")
    assert caught.value.metadata["count"] == "50"
    assert "of the po numbers" not in caught.value.message
    assert caught.value.message.startswith("50 of these po numbers were never issued")


@pytest.mark.parametrize(
    ("first", "last", "reason", "expected"),
    [
        (1, 1000, "x", []),
        (0, 5, "x", [("first_value", "VALUE_OUT_OF_RANGE")]),
        (5, 4, "x", [("last_value", "VALUE_OUT_OF_RANGE")]),
        (1, 1001, "x", [("last_value", "TOO_MANY_NUMBERS")]),
        (1, 1, " \t", [("reason", "REASON_REQUIRED")]),
        (1, 1, "x" * 500, []),
        (1, 1, "x" * 501, [("reason", "REASON_TOO_LONG")]),
    ],
)
def test_what_a_void_must_say(first, last, reason, expected):
    violations = Violations()
    domain.check_void(domain.VoidRequest("po", "", "", first, last, reason), violations)
    assert [(v.field, v.reason) for v in violations.items] == expected


def test_the_words_of_void_refusals():
    violations = Violations()
    domain.check_void(domain.VoidRequest("po", "a b", "Q1", 7, 2000, ""), violations)
    assert [v.description for v in violations.items] == [
        "voids at most 1000 numbers at once; 7..2000 is 1994",
        "is required: say why the numbers were never used",
        "must be 1..40 characters of A-Z a-z 0-9 . _ -; got 'a b'",
        'must be a year "2025", a month "2025-06" or a fiscal year "FY2025"; got \'Q1\'',
    ]
    violations = Violations()
    domain.check_void(domain.VoidRequest("po", "", "", 0, 0, "x" * 501), violations)
    assert [v.description for v in violations.items] == [
        "must be 1 or more",
        "must be at most 500 characters, got 501",
    ]
    violations = Violations()
    domain.check_void(domain.VoidRequest("po", "", "", 9, 8, "x"), violations)
    assert violations.items[0].description == "must be first_value (9) or more, got 8"


def test_a_void_is_audited_without_moving_the_value():
    change = domain.void_change(VOID, 4711, 7, T0)
    assert change == domain.CounterChange(
        "invoice", "void", 4711, 4711, 7, T0, "EU", "2025", "document failed", 101, 104
    )
    padded = domain.VoidRequest("po", "", "", 1, 1, "  jammed \n")
    assert domain.void_change(padded, 3, None, T0).reason == "jammed"


def test_events_name_their_kind_and_value_before():
    event = domain.Event(1, "po", "", "", "create", None, 5, None, None, "", None, None, T0)
    assert (event.kind, event.previous_value) == ("created", 0)
    assert [domain.EVENT_KINDS[a] for a in ("advance", "issue", "void", "update")] == [
        "advanced", "issued", "voided", "updated",
    ]  # fmt: skip


def test_runs_extend_at_any_place_and_are_cut_after_exactly_twenty():
    def named(values: list[int], last: int) -> str:
        request = domain.VoidRequest("po", "", "", 1, last, "x")
        issued = [(v, v) for v in range(1, last + 1) if v not in values]
        with pytest.raises(FailedPrecondition) as caught:
            domain.check_voidable(request, issued=issued, voided=[])
        return caught.value.metadata["values"]

    assert named([1, 3, 5, 6], 7) == "1, 3, 5-6"
    twenty = list(range(1, 40, 2))
    assert named(twenty, 40).endswith("37, 39")
    assert named([*twenty, 41], 42).endswith("37, 39, ...")


def test_void_refusals_name_their_fields():
    violations = Violations()
    domain.check_void(domain.VoidRequest("po", "a b", "Q1", 1, 1, "x"), violations)
    assert [v.field for v in violations.items] == ["series", "period"]


# Supplied numbers read back in a counter's format.


@pytest.mark.parametrize(
    ("fmt", "number", "read"),
    [
        (Format("ADV-", 4), "ADV-0042", ("", 42)),
        (Format("ADV-", 4), "ADV-123456", ("", 123456)),
        (Format("ADV-", 4), "ADV-042", None),  # fewer digits than the padding
        (Format("ADV-", 4), "ADV-00x2", None),
        (Format("ADV-", 4), "XADV-0042", None),
        (Format("A.", 1, "-B"), "A.7-B", ("", 7)),  # literal dots are literal
        (Format("A.", 1, "-B"), "AX7-B", None),
        (Format("INV/{YYYY}/", 5, "", "yearly"), "INV/2025/04711", ("2025", 4711)),
        (Format("INV{YY}-", 3, "", "yearly"), "INV25-017", ("2025", 17)),
        (Format("ADV-", 4, "", "yearly"), "ADV-0042", None),  # no year: no period
        (Format("{YYYY}-{MM}/", 2, "", "monthly"), "2025-06/07", ("2025-06", 7)),
        (Format("{YYYY}-{MM}/", 2, "", "monthly"), "2025-13/07", None),
        (Format("{YYYY}/", 2, "", "monthly"), "2025/07", None),  # no month
        (Format("SO-{FY}-", 3, "", "fiscal_yearly"), "SO-2026-120", ("FY2026", 120)),
        (Format("SO-{YYYY}-", 3, "", "fiscal_yearly"), "SO-2026-120", None),
        (Format("{YYYY}{YYYY}-", 1), "20252025-3", ("", 3)),  # a repeated token repeats
        (Format("{YYYY}{YYYY}-", 1), "20252026-3", None),
        (Format("{YYYY}/", 1, "", "yearly"), "0000/3", None),
        (Format("N", 1), "N" + "9" * 19, None),  # past int64
        (Format("N", 1), "N9223372036854775807", None),  # 19 digits: more than 18
    ],
)
def test_a_supplied_number_is_read_back_only_in_its_counters_format(fmt, number, read):
    assert domain.read_number(fmt, number) == read


@pytest.mark.parametrize(
    ("reset", "period", "fits"),
    [
        ("yearly", "0001", True), ("yearly", "0000", False),
        ("monthly", "0001-01", True), ("monthly", "0000-12", False),
        ("fiscal_yearly", "FY0001", True), ("fiscal_yearly", "FY0000", False),
    ],
)  # fmt: skip
def test_the_first_year_is_a_period_and_year_zero_is_not(reset, period, fits):
    assert domain.period_fits(reset, period) is fits
