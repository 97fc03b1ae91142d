"""Parsing the wire's decimal strings, dates and free text into exact values.

Money is integer cents, never a float. Each parser adds a violation under the field
path it is given and returns None, so a caller reports every bad field at once.
"""

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import iso4217

from service.errors import Violations

MAX_CENTS = 10**15 - 1  # 9,999,999,999,999.99: sums of many stay far inside int64
_AMOUNT = re.compile(r"([0-9]{1,20})(?:\.([0-9]{1,2}))?")
_RATE = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,10}))?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for an error message, cut short: errors must stay small whatever
    was sent (gRPC limits the size of the status a client will accept)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_amount(text: str, violations: Violations, field: str) -> int | None:
    """A positive decimal string with at most 2 decimals ("500", "10.5", "0.01") in cents."""
    match = _AMOUNT.fullmatch(text)
    if not match:
        violations.add(
            field,
            f'must be a decimal number with at most 2 decimals, like "100.00"; got {shown(text)}',
            "AMOUNT_INVALID",
        )
        return None
    whole, fraction = match.group(1), (match.group(2) or "").ljust(2, "0")
    cents = int(whole) * 100 + int(fraction)
    if cents == 0:
        violations.add(field, "must be more than 0", "AMOUNT_NOT_POSITIVE")
        return None
    if cents > MAX_CENTS:
        violations.add(field, f"must be at most {format_cents(MAX_CENTS)}", "AMOUNT_TOO_LARGE")
        return None
    return cents


def format_cents(cents: int) -> str:
    whole, fraction = divmod(abs(cents), 100)
    return f"-{whole}.{fraction:02d}" if cents < 0 else f"{whole}.{fraction:02d}"


MIN_RATE, MAX_RATE = Decimal("0.000001"), Decimal(1_000_000)
MAX_RATE_DIGITS = 10


def parse_rate(text: str, violations: Violations, field: str) -> Decimal | None:
    """An exchange rate: a positive decimal like "1.0825", within 1e-6..1e6, with at most
    10 significant digits (what rate feeds publish; more is a unit mistake or noise)."""
    match = _RATE.fullmatch(text)
    if not match or Decimal(text) == 0:
        violations.add(
            field,
            f'must be a positive decimal like "1.0825"; got {shown(text)}',
            "EXCHANGE_RATE_INVALID",
        )
        return None
    rate = Decimal(text)
    if not MIN_RATE <= rate <= MAX_RATE:
        violations.add(
            field, f"must be within 0.000001..1000000; got {text}", "EXCHANGE_RATE_OUT_OF_RANGE"
        )
        return None
    digits = len(rate.normalize().as_tuple().digits)
    if digits > MAX_RATE_DIGITS:
        violations.add(
            field,
            f"must have at most {MAX_RATE_DIGITS} significant digits; {text} has {digits}",
            "EXCHANGE_RATE_TOO_PRECISE",
        )
        return None
    return rate


def convert(cents: int, rate: Decimal) -> int:
    """`cents` x `rate`, rounded half up to whole cents."""
    if rate == _ONE:  # most advances are in the base currency: no decimal arithmetic
        return cents
    return int((Decimal(cents) * rate).quantize(_ONE, rounding=ROUND_HALF_UP))


_ONE = Decimal(1)


def format_rate(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def parse_date(text: str, violations: Violations, field: str) -> date | None:
    """A calendar date written YYYY-MM-DD."""
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    violations.add(
        field, f"must be a real date written YYYY-MM-DD; got {shown(text)}", "DATE_INVALID"
    )
    return None


def check_batch_size(size: int, maximum: int, field: str, noun: str) -> None:
    """INVALID_ARGUMENT unless a batch holds 1..`maximum` items (checked before any is read)."""
    if not 1 <= size <= maximum:
        violations = Violations()
        violations.add(
            field, f"must hold 1..{maximum} {noun}, got {size}", "BATCH_SIZE_OUT_OF_RANGE"
        )
        violations.raise_if_any()


def parse_time_zone(text: str, violations: Violations, field: str) -> str | None:
    """An IANA time zone name, such as "Europe/Berlin"."""
    try:
        if text and len(text) <= 64:
            ZoneInfo(text)
            return text
    except (ZoneInfoNotFoundError, ValueError):
        pass
    violations.add(
        field, f'must be an IANA time zone like "Europe/Berlin"; got {shown(text)}',
        "TIME_ZONE_UNKNOWN",
    )  # fmt: skip
    return None


# The currencies of ISO 4217's current table (the iso4217 package follows SIX's
# publications), less its units that are no currency: precious metals, SDRs, bond-market
# units, the testing and "no currency" codes (those without minor units).
CURRENCIES = frozenset(c.code for c in iso4217.Currency if c.exponent is not None)


def parse_currency(text: str, violations: Violations, field: str) -> str | None:
    if not _CURRENCY.fullmatch(text):
        violations.add(
            field, f'must be an ISO 4217 code like "USD"; got {shown(text)}', "CURRENCY_INVALID"
        )
        return None
    if text not in CURRENCIES:
        violations.add(
            field, f"{text} is no currency of ISO 4217's current table", "CURRENCY_UNKNOWN"
        )
        return None
    return text


def check_text(text: str, violations: Violations, field: str, max_length: int) -> str:
    """Free text: at most `max_length` characters, no control characters but newlines and tabs."""
    if len(text) > max_length:
        violations.add(field, f"must be at most {max_length} characters", "TEXT_TOO_LONG")
    elif not text.replace("\n", "").replace("\t", "").isprintable():
        violations.add(field, "must not contain control characters", "TEXT_NOT_PRINTABLE")
    return text


def is_identifier(text: str, max_length: int = 100) -> bool:
    """An id from another system: at most `max_length` printable characters, no newlines.
    (Asked alone where a field path to report under costs more than the check.)"""
    return len(text) <= max_length and text.isprintable()


def check_identifier(text: str, violations: Violations, field: str, max_length: int = 100) -> str:
    """`text`, with a violation under `field` unless is_identifier."""
    if is_identifier(text, max_length):
        return text
    if len(text) > max_length:
        violations.add(field, f"must be at most {max_length} characters", "TEXT_TOO_LONG")
    else:
        violations.add(field, "must contain only printable characters", "TEXT_NOT_PRINTABLE")
    return text
