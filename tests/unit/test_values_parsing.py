"""service/values.py to the letter: what each parser returns and exactly what it reports
(field, description, reason), since callers see those words. Pure: no I/O."""

from decimal import Decimal

import pytest

from service.errors import FieldViolation, Violations
from service.values import (
    check_identifier,
    check_text,
    convert,
    format_rate,
    parse_amount,
    parse_currency,
    parse_date,
    parse_rate,
    parse_time_zone,
    shown,
)


def reported(parse, text, *args):
    """What `parse` returned for `text` under the field "f", and what it reported."""
    violations = Violations()
    result = parse(text, violations, "f", *args)
    return result, violations.items


def test_shown_quotes_up_to_40_characters_and_cuts_the_rest():
    assert shown("") == "''"
    assert shown("a" * 40) == repr("a" * 40)
    assert shown("a" * 41) == repr("a" * 40 + "…")
    assert shown("abcdef", limit=3) == repr("abc…")
    assert shown("abc", limit=3) == repr("abc")


def test_a_malformed_amount_is_reported_with_what_was_sent():
    assert reported(parse_amount, "1e5") == (
        None,
        [
            FieldViolation(
                "f",
                "must be a decimal number with at most 2 decimals, like \"100.00\"; got '1e5'",
                "AMOUNT_INVALID",
            )
        ],
    )


def test_a_zero_amount_is_not_positive():
    assert reported(parse_amount, "0.00") == (
        None,
        [FieldViolation("f", "must be more than 0", "AMOUNT_NOT_POSITIVE")],
    )


def test_an_amount_past_the_maximum_names_the_maximum():
    assert reported(parse_amount, "10000000000000") == (
        None,
        [FieldViolation("f", "must be at most 9999999999999.99", "AMOUNT_TOO_LARGE")],
    )


def test_a_bad_rate_is_reported_with_what_was_sent_cut_short():
    long = "9" * 50
    assert reported(parse_rate, long) == (
        None,
        [
            FieldViolation(
                "f",
                f'must be a positive decimal like "1.0825"; got {shown(long)}',
                "EXCHANGE_RATE_INVALID",
            )
        ],
    )
    assert reported(parse_rate, "0.0000000000")[1][0].reason == "EXCHANGE_RATE_INVALID"


@pytest.mark.parametrize(
    "text",
    ["0.000001", "1000000", "1.0825", "0.0001234567", "123456.7890", "1.5000000000", "1.234567891"],
)
def test_rates_within_range_and_ten_significant_digits_pass(text):
    assert reported(parse_rate, text) == (Decimal(text), [])


@pytest.mark.parametrize(
    ("text", "description", "reason"),
    [
        ("0.0000001", "must be within 0.000001..1000000; got 0.0000001",
         "EXCHANGE_RATE_OUT_OF_RANGE"),
        ("1000000.1", "must be within 0.000001..1000000; got 1000000.1",
         "EXCHANGE_RATE_OUT_OF_RANGE"),
        ("0.0000000001", "must be within 0.000001..1000000; got 0.0000000001",
         "EXCHANGE_RATE_OUT_OF_RANGE"),
        ("1.0123456789", "must have at most 10 significant digits; 1.0123456789 has 11",
         "EXCHANGE_RATE_TOO_PRECISE"),
        ("123456.78901", "must have at most 10 significant digits; 123456.78901 has 11",
         "EXCHANGE_RATE_TOO_PRECISE"),
    ],
)  # fmt: skip
def test_rates_out_of_range_or_too_precise_are_refused(text, description, reason):
    assert reported(parse_rate, text) == (None, [FieldViolation("f", description, reason)])


def test_convert_rounds_half_up_to_whole_cents():
    assert convert(1, Decimal("0.5")) == 1  # 0.5 -> 1
    assert convert(1, Decimal("0.49")) == 0
    assert convert(7, Decimal("2.5")) == 18  # 17.5 -> 18
    assert convert(12345, Decimal("1")) == 12345


@pytest.mark.parametrize(
    ("rate", "text"),
    [("1.50", "1.5"), ("1E+2", "100"), ("0.0000001", "0.0000001"), ("1.0825", "1.0825")],
)
def test_format_rate_writes_the_plain_shortest_decimal(rate, text):
    assert format_rate(Decimal(rate)) == text


def test_a_bad_date_is_reported_with_what_was_sent():
    assert reported(parse_date, "2024-02-30") == (
        None,
        [
            FieldViolation(
                "f", "must be a real date written YYYY-MM-DD; got '2024-02-30'", "DATE_INVALID"
            )
        ],
    )


@pytest.mark.parametrize("text", ["USD", "EUR", "JPY", "BHD", "CHF", "VES"])
def test_currency_codes_are_those_of_iso_4217(text):
    assert reported(parse_currency, text) == (text, [])


@pytest.mark.parametrize("text", ["XYZ", "ABC", "XAU", "XXX", "XTS", "DEM"])
def test_three_letters_no_currency_has_are_unknown(text):
    """Made up, precious metals, testing and no-currency codes, or withdrawn (DEM)."""
    assert reported(parse_currency, text) == (
        None,
        [FieldViolation("f", f"{text} is no currency of ISO 4217's current table",
                        "CURRENCY_UNKNOWN")],
    )  # fmt: skip


@pytest.mark.parametrize("text", ["usd", "US", "USDX", "", "U$D"])
def test_a_bad_currency_is_reported_with_what_was_sent(text):
    assert reported(parse_currency, text) == (
        None,
        [
            FieldViolation(
                "f", f'must be an ISO 4217 code like "USD"; got {text!r}', "CURRENCY_INVALID"
            )
        ],
    )


def test_free_text_up_to_the_limit_may_hold_newlines_and_tabs():
    text = "line one\n\tline two"
    assert reported(check_text, text, len(text)) == (text, [])
    assert reported(check_text, "", 0) == ("", [])
    assert reported(check_text, "\n", 1) == ("\n", [])
    assert reported(check_text, "\t", 1) == ("\t", [])


def test_free_text_past_the_limit_is_too_long():
    assert reported(check_text, "abcd", 3) == (
        "abcd",
        [FieldViolation("f", "must be at most 3 characters", "TEXT_TOO_LONG")],
    )


@pytest.mark.parametrize("text", ["a\rb", "\x00", "bell\x07", "\n\x1b"])
def test_free_text_with_other_control_characters_is_refused(text):
    assert reported(check_text, text, 100) == (
        text,
        [FieldViolation("f", "must not contain control characters", "TEXT_NOT_PRINTABLE")],
    )


def test_identifiers_are_at_most_100_characters_unless_told_otherwise():
    assert reported(check_identifier, "x" * 100) == ("x" * 100, [])
    assert reported(check_identifier, "x" * 101) == (
        "x" * 101,
        [FieldViolation("f", "must be at most 100 characters", "TEXT_TOO_LONG")],
    )
    assert reported(check_identifier, "abc", 2) == (
        "abc",
        [FieldViolation("f", "must be at most 2 characters", "TEXT_TOO_LONG")],
    )
    assert reported(check_identifier, "ab", 2) == ("ab", [])


@pytest.mark.parametrize("text", ["a\nb", "a\tb", "\x7f"])
def test_identifiers_hold_no_newlines_tabs_or_control_characters(text):
    assert reported(check_identifier, text) == (
        text,
        [FieldViolation("f", "must contain only printable characters", "TEXT_NOT_PRINTABLE")],
    )


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
def test_an_iana_time_zone_is_taken_as_written(zone):
    violations = Violations()
    assert parse_time_zone(zone, violations, "time-zone") == zone
    assert violations.items == []


@pytest.mark.parametrize(
    "zone", ["", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe/" + "x" * 60]
)
def test_anything_else_is_refused_naming_what_was_given(zone):
    violations = Violations()
    assert parse_time_zone(zone, violations, "time-zone") is None
    assert [(v.field, v.reason) for v in violations.items] == [("time-zone", "TIME_ZONE_UNKNOWN")]
    assert violations.items[0].description.startswith(
        'must be an IANA time zone like "Europe/Berlin"; got '
    )
