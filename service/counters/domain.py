"""Counter rules, from the reference endpoint and DESIGN.md's second step. Pure: no gRPC,
no SQL, no clock (the date that is today arrives in a Calendar).

A counter is one period of one series of a document type: (counter_type, series,
period). The format (prefix, suffix, padding, reset) belongs to the series; each period
counts on its own, from 0.
"""

import re
from dataclasses import dataclass, replace
from datetime import date, datetime

from service import values
from service.errors import FailedPrecondition, InvalidArgument, NotFound, OutOfRange, Violations
from service.values import shown

# The document types with counters: the reference's, in its order, then AR advances.
COUNTER_TYPES = (
    "order", "invoice", "quote", "po", "rma", "journal", "account", "vendor_bill",
    "ap_payment", "check", "transfer", "vendor_return", "refund", "inventory_txn",
    "work_order", "fixed_asset", "lease", "lease_payment", "deposit", "vendor_credit",
    "payment_batch", "ar_advance",
)  # fmt: skip
MAX_VALUE = 2**63 - 1  # int64: the wire type and the column type
MAX_PREFIX_LENGTH = 20  # prefix and suffix alike, as written (tokens unrendered)
DEFAULT_PADDING = 7
MIN_PADDING, MAX_PADDING = 1, 12
MAX_BATCH = 50
MAX_ISSUE = 1000
MAX_SERIES_LENGTH = 40
_SERIES = re.compile(r"[A-Za-z0-9._-]{1,40}")

NEVER, YEARLY, MONTHLY, FISCAL_YEARLY = "never", "yearly", "monthly", "fiscal_yearly"
# Each reset's period names: what they look like, and how to say so.
_PERIOD_FORMS = {
    NEVER: (re.compile(r""), '"" (the counter never resets)'),
    YEARLY: (re.compile(r"[0-9]{4}"), 'a year, "2025"'),
    MONTHLY: (re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])"), 'a month, "2025-06"'),
    FISCAL_YEARLY: (re.compile(r"FY[0-9]{4}"), 'a fiscal year, "FY2025"'),
}
TOKENS = ("{YYYY}", "{YY}", "{MM}", "{FY}")
_TOKEN = re.compile(r"\{YYYY\}|\{YY\}|\{MM\}|\{FY\}")
_UNKNOWN_TOKEN = re.compile(r"\{[^{}]*\}?|\}")


@dataclass(frozen=True)
class Calendar:
    """What places a date in a period: the entity's fiscal year, and today's date in its
    time zone (the date of a call that names none)."""

    today: date
    fiscal_year_start_month: int = 1

    def fiscal_year(self, day: date) -> int:
        """Named by the calendar year in which it ends."""
        start = self.fiscal_year_start_month
        return day.year + 1 if start > 1 and day.month >= start else day.year

    def period_of(self, reset: str, day: date) -> str:
        if reset == YEARLY:
            return f"{day.year:04d}"
        if reset == MONTHLY:
            return f"{day.year:04d}-{day.month:02d}"
        if reset == FISCAL_YEARLY:
            return f"FY{self.fiscal_year(day):04d}"
        return ""

    def first_day(self, reset: str, period: str) -> date:
        """The first day of `period` (of the form `reset` gives it); today for a counter
        that never resets."""
        if reset == YEARLY:
            return date(int(period), 1, 1)
        if reset == MONTHLY:
            return date(int(period[:4]), int(period[5:]), 1)
        if reset == FISCAL_YEARLY:
            year, start = int(period[2:]), self.fiscal_year_start_month
            return date(year, 1, 1) if start == 1 else date(max(year - 1, 1), start, 1)
        return self.today

    def in_range(self, reset: str, day: date) -> bool:
        """Whether `day`'s period can be named: fiscal years end by FY9999."""
        return reset != FISCAL_YEARLY or self.fiscal_year(day) <= 9999


def render(text: str, day: date, fiscal_year: int) -> str:
    """`text` with its date tokens replaced by `day`'s year, month and fiscal year."""
    if "{" not in text:
        return text
    values = {
        "{YYYY}": f"{day.year:04d}",
        "{YY}": f"{day.year % 100:02d}",
        "{MM}": f"{day.month:02d}",
        "{FY}": f"{fiscal_year:04d}",
    }
    return _TOKEN.sub(lambda token: values[token.group()], text)


@dataclass(frozen=True)
class Format:
    """How the numbers of a (counter_type, series) are written, and when they restart."""

    prefix: str
    padding: int
    suffix: str = ""
    reset: str = NEVER

    @property
    def dated(self) -> bool:
        """Whether its numbers depend on a date: a resetting counter, or date tokens."""
        return self.reset != NEVER or "{" in self.prefix + self.suffix


def format_number(prefix: str, padding: int, value: int, suffix: str = "") -> str:
    """`prefix` + `value` zero-padded to at least `padding` digits + `suffix`."""
    return f"{prefix}{value:0{padding}d}{suffix}"


@dataclass(frozen=True)
class Counter:
    """One period of one series. `day` is the date its numbers are written with: the
    issuing date, or the period's first day (today for a counter that never resets)."""

    counter_type: str  # the reference's name: "invoice", "po", "ar_advance", ...
    prefix: str
    padding: int
    current_value: int
    create_time: datetime | None  # None for a period that has not started
    update_time: datetime | None
    series: str = ""
    period: str = ""
    suffix: str = ""
    reset: str = NEVER
    day: date = date(1970, 1, 1)
    fiscal_year: int = 1970

    def number(self, value: int) -> str:
        prefix = render(self.prefix, self.day, self.fiscal_year)
        suffix = render(self.suffix, self.day, self.fiscal_year)
        return format_number(prefix, self.padding, value, suffix)

    @property
    def next_number(self) -> str:
        """The next number to be issued; empty once the counter is exhausted."""
        if self.current_value >= MAX_VALUE:
            return ""
        return self.number(self.current_value + 1)

    def raised(self, value: int, update_time: datetime) -> "Counter":
        """This counter at `value` (built directly: dataclasses.replace costs more)."""
        return Counter(
            self.counter_type, self.prefix, self.padding, value, self.create_time, update_time,
            self.series, self.period, self.suffix, self.reset, self.day, self.fiscal_year,
        )  # fmt: skip

    def dated(self, day: date, calendar: Calendar) -> "Counter":
        """This counter, its numbers written with `day`."""
        return replace(self, day=day, fiscal_year=calendar.fiscal_year(day))


@dataclass(frozen=True)
class Series:
    """A (counter_type, series) and its format. `in_use` once IssueNumbers has issued from
    it: its reset is then fixed."""

    counter_type: str
    series: str
    format: Format
    in_use: bool
    create_time: datetime
    update_time: datetime

    def counter(
        self, period: str, calendar: Calendar, value: int = 0,
        create_time: datetime | None = None, update_time: datetime | None = None,
    ) -> Counter:  # fmt: skip
        """The counter of `period` with `value` (a period not started yet: 0, no times),
        written with the period's first day."""
        f = self.format
        day = calendar.first_day(f.reset, period)
        return Counter(
            self.counter_type, f.prefix, f.padding, value, create_time,
            max(update_time, self.update_time) if update_time else None,
            self.series, period, f.suffix, f.reset, day, calendar.fiscal_year(day),
        )  # fmt: skip


def describe(counter_type: str, series: str) -> str:
    """ "invoice", or "invoice series 'EU'" in messages."""
    return f"{counter_type} series {series!r}" if series else counter_type


@dataclass(frozen=True)
class AdvanceRequest:
    counter_type: str
    advance_to: int
    prefix: str | None = None
    padding: int | None = None
    series: str = ""
    period: str = ""
    suffix: str | None = None
    reset: str | None = None  # None: not given (NEVER when the series is created)
    validate_only: bool = False
    expected_current_value: int | None = None
    reason: str = ""  # why, for the audit trail (set by the service, not by callers)


@dataclass(frozen=True)
class AdvanceResult:
    counter: Counter
    advanced: bool
    created: bool
    previous_value: int
    new_series: Series | None = None  # the series this call created, if it did


@dataclass(frozen=True)
class IssueResult:
    counter: Counter  # dated with the issuing date
    first_value: int
    last_value: int

    @property
    def numbers(self) -> list[str]:
        number = self.counter.number
        return [number(v) for v in range(self.first_value, self.last_value + 1)]


def check_advance(request: AdvanceRequest, violations: Violations) -> None:
    """Adds every problem with `request` that needs no stored counter to `violations`.
    Prefix, suffix and padding are checked even when the counter exists (and they will be
    ignored): bad input is never accepted."""
    if request.advance_to < 0:
        violations.add("advance_to", "must be 0 or more", "ADVANCE_TO_NEGATIVE")
    if request.prefix is not None:
        check_affix(request.prefix, violations, "prefix")
    if request.suffix is not None:
        check_affix(request.suffix, violations, "suffix")
    if request.padding is not None:
        check_padding(request.padding, violations, "padding")
    check_series(request.series, violations, "series")
    check_period_text(request.period, violations, "period")


def check_padding(padding: int, violations: Violations, field_path: str) -> None:
    if not MIN_PADDING <= padding <= MAX_PADDING:
        violations.add(
            field_path,
            f"must be {MIN_PADDING}..{MAX_PADDING}, got {padding}",
            "PADDING_OUT_OF_RANGE",
        )


def check_affix(text: str, violations: Violations, field_path: str) -> None:
    """A prefix or suffix: at most 20 printable characters, braces only in date tokens."""
    if len(text) > MAX_PREFIX_LENGTH:
        violations.add(
            field_path,
            f"must be at most {MAX_PREFIX_LENGTH} characters, got {len(text)}",
            "PREFIX_TOO_LONG",
        )
    if not text.isprintable():
        violations.add(field_path, "must contain only printable characters", "PREFIX_NOT_PRINTABLE")
    unknown = _UNKNOWN_TOKEN.search(_TOKEN.sub("", text))
    if unknown is not None:
        violations.add(
            field_path,
            f"{unknown.group()!r} is not a date token: use {', '.join(TOKENS)}",
            "TOKEN_UNKNOWN",
        )


def check_series(series: str, violations: Violations, field_path: str) -> None:
    if series and not _SERIES.fullmatch(series):
        violations.add(
            field_path,
            f"must be 1..{MAX_SERIES_LENGTH} characters of A-Z a-z 0-9 . _ -; got {shown(series)}",
            "SERIES_INVALID",
        )


def check_period_text(period: str, violations: Violations, field_path: str) -> None:
    """A period that no reset could have: refused before anything is read."""
    if period and not any(form.fullmatch(period) for form, _ in _PERIOD_FORMS.values()):
        violations.add(
            field_path,
            f'must be a year "2025", a month "2025-06" or a fiscal year "FY2025"; '
            f"got {shown(period)}",
            "PERIOD_INVALID",
        )


def check_period(reset: str, period: str, counter_type: str, series: str, field_path: str) -> None:
    """INVALID_ARGUMENT unless `period` has the form `reset` gives its periods."""
    if reset == NEVER and not period:
        return  # the first version's every counter: nothing to check
    violations = Violations()
    what = describe(counter_type, series)
    _, described = _PERIOD_FORMS[reset]
    if reset == NEVER and period:
        violations.add(
            field_path, f"must be empty: the {what} counter never resets", "PERIOD_INVALID"
        )
    elif reset != NEVER and not period:
        violations.add(
            field_path,
            f"is required: the {what} counter resets {reset.replace('_', ' ')}; "
            f"name the period, {described}",
            "PERIOD_REQUIRED",
        )
    elif period and not period_fits(reset, period):
        violations.add(
            field_path,
            f"must be {described}: the {what} counter resets {reset.replace('_', ' ')}; "
            f"got {shown(period)}",
            "PERIOD_INVALID",
        )
    violations.raise_if_any()


def period_fits(reset: str, period: str) -> bool:
    """Whether `period` names one of `reset`'s periods (none is in a year 0)."""
    form, _ = _PERIOD_FORMS[reset]
    return form.fullmatch(period) is not None and (
        reset == NEVER or int(period.removeprefix("FY")[:4]) > 0
    )


def new_series(request: AdvanceRequest, now: datetime) -> Series:
    """The series a request creates; its prefix is then required."""
    if request.prefix is None:
        violations = Violations()
        violations.add(
            "prefix",
            f"is required: the entity has no {describe(request.counter_type, request.series)} "
            "counter yet",
            "PREFIX_REQUIRED",
        )
        violations.raise_if_any()
    padding = DEFAULT_PADDING if request.padding is None else request.padding
    fmt = Format(request.prefix or "", padding, request.suffix or "", request.reset or NEVER)
    return Series(request.counter_type, request.series, fmt, False, now, now)


@dataclass(frozen=True)
class CounterChange:
    """One row of a counter's audit trail."""

    counter_type: str
    action: str  # "create", "advance", "issue" or "update"
    old_value: int | None
    new_value: int
    api_key_id: int | None
    time: datetime
    series: str = ""
    period: str = ""
    reason: str = ""
    first_value: int | None = None  # the numbers an issue or a void covers
    last_value: int | None = None


def change_of(result: AdvanceResult, api_key_id: int | None, reason: str = "") -> CounterChange:
    """The audit row of an AdvanceResult that changed its counter."""
    c = result.counter
    if result.created:
        assert c.create_time is not None
        return CounterChange(
            c.counter_type, "create", None, c.current_value, api_key_id, c.create_time,
            c.series, c.period, reason,
        )  # fmt: skip
    assert c.update_time is not None
    return CounterChange(
        c.counter_type, "advance", result.previous_value, c.current_value, api_key_id,
        c.update_time, c.series, c.period, reason,
    )  # fmt: skip


def advanced(
    series: Series | None,
    counter: Counter | None,
    request: AdvanceRequest,
    now: datetime,
    calendar: Calendar,
) -> AdvanceResult:
    """The counter of `request` (None: missing, in a `series` that may be missing too)
    raised to `request.advance_to`, which has passed check_advance: created when missing,
    unchanged when already there or past it."""
    made = series is None
    if series is None:
        series = new_series(request, now)
    check_period(
        series.format.reset, request.period, request.counter_type, request.series, "period"
    )
    previous = 0 if counter is None else counter.current_value
    expected = request.expected_current_value
    if expected is not None and expected != previous:
        raise counter_value_changed(request, previous)
    if counter is None:
        created = series.counter(request.period, calendar, request.advance_to, now, now)
        return AdvanceResult(created, True, True, 0, new_series=series if made else None)
    if previous >= request.advance_to:
        return AdvanceResult(counter, advanced=False, created=False, previous_value=previous)
    assert counter.update_time is not None
    raised = counter.raised(request.advance_to, max(now, counter.update_time))
    return AdvanceResult(raised, advanced=True, created=False, previous_value=previous)


UPDATABLE = ("prefix", "suffix", "padding", "reset")


def updated(series: Series, changes: dict[str, object], now: datetime) -> Series:
    """`series` with the format `changes` (checked fields of UPDATABLE); its reset only
    while nothing was issued from it."""
    if "reset" in changes and changes["reset"] != series.format.reset and series.in_use:
        raise FailedPrecondition(
            "COUNTER_IN_USE",
            f"the {describe(series.counter_type, series.series)} counter has issued numbers, "
            "so its reset is fixed; create a new series to number differently",
            metadata={"counter_type": series.counter_type, "series": series.series},
        )
    fmt = replace(series.format, **changes)  # type: ignore[arg-type]
    if fmt == series.format:
        return series
    return replace(series, format=fmt, update_time=max(now, series.update_time))


def format_change(before: Series, after: Series, api_key_id: int | None) -> CounterChange:
    """The audit row of an UpdateCounter: what changed, in words."""
    old, new = before.format, after.format
    said = [
        f"{name} {getattr(old, name)!r} -> {getattr(new, name)!r}"
        for name in UPDATABLE
        if getattr(old, name) != getattr(new, name)
    ]
    return CounterChange(
        after.counter_type, "update", None, 0, api_key_id, after.update_time, after.series,
        "", "; ".join(said),
    )  # fmt: skip


def type_rank(counter_type: str) -> int:
    """The type's place in COUNTER_TYPES: listings follow it."""
    return COUNTER_TYPES.index(counter_type) + 1


def check_issue_count(count: int, violations: Violations) -> int:
    """The number of numbers to issue: 0 means 1."""
    count = count or 1
    if not 1 <= count <= MAX_ISSUE:
        violations.add(
            "count", f"must be 1..{MAX_ISSUE} (0 means 1), got {count}", "COUNT_OUT_OF_RANGE"
        )
    return count


def check_batch_size(size: int) -> None:
    values.check_batch_size(size, MAX_BATCH, "counters", "counters")


def counter_not_found(counter_type: str, series: str = "") -> NotFound:
    metadata = {"counter_type": counter_type}
    if series:
        metadata["series"] = series
    return NotFound(
        "COUNTER_NOT_FOUND",
        f"the entity has no {describe(counter_type, series)} counter; "
        "AdvanceCounter with a prefix creates it",
        metadata=metadata,
    )


def counter_exhausted(counter: Counter, count: int) -> OutOfRange:
    metadata = {"counter_type": counter.counter_type, "current_value": str(counter.current_value)}
    if counter.series:
        metadata["series"] = counter.series
    if counter.period:
        metadata["period"] = counter.period
    return OutOfRange(
        "COUNTER_EXHAUSTED",
        f"issuing {count} more {describe(counter.counter_type, counter.series)} numbers "
        f"would pass {MAX_VALUE}",
        metadata=metadata,
    )


def counter_value_changed(request: AdvanceRequest, actual: int) -> FailedPrecondition:
    return FailedPrecondition(
        "COUNTER_VALUE_CHANGED",
        f"the {describe(request.counter_type, request.series)} counter"
        f"{' of ' + request.period if request.period else ''} is at {actual}, "
        f"not the expected {request.expected_current_value}; nothing was changed",
        metadata={
            "counter_type": request.counter_type,
            "series": request.series,
            "period": request.period,
            "current_value": str(actual),
            "expected_current_value": str(request.expected_current_value),
        },
    )


def date_out_of_range(field_path: str) -> InvalidArgument:
    violations = Violations()
    violations.add(field_path, "falls in a fiscal year after FY9999", "DATE_INVALID")
    return InvalidArgument(violations.items)


# Counter events, as callers see them, and voids.

MAX_VOID = 1000
MAX_REASON_LENGTH = 500
# What each audit action is called on the wire.
EVENT_KINDS = {
    "create": "created", "advance": "advanced", "issue": "issued", "void": "voided",
    "update": "updated",
}  # fmt: skip


@dataclass(frozen=True)
class Event:
    """One change to a counter, as ListCounterEvents shows it."""

    event_key: int
    counter_type: str
    series: str
    period: str
    action: str
    old_value: int | None
    new_value: int
    first_value: int | None
    last_value: int | None
    reason: str
    api_key_id: int | None
    idempotency_key: str | None
    time: datetime

    @property
    def kind(self) -> str:
        return EVENT_KINDS[self.action]

    @property
    def previous_value(self) -> int:
        """The value before the change: 0 before a counter was created."""
        return 0 if self.old_value is None else self.old_value


@dataclass(frozen=True)
class VoidRequest:
    counter_type: str
    series: str
    period: str
    first_value: int
    last_value: int
    reason: str


def check_void(request: VoidRequest, violations: Violations) -> None:
    """What can be said of a void before anything is read."""
    first, last = request.first_value, request.last_value
    if first < 1:
        violations.add("first_value", "must be 1 or more", "VALUE_OUT_OF_RANGE")
    if last < first:
        violations.add(
            "last_value", f"must be first_value ({first}) or more, got {last}", "VALUE_OUT_OF_RANGE"
        )
    elif last - first + 1 > MAX_VOID:
        violations.add(
            "last_value",
            f"voids at most {MAX_VOID} numbers at once; {first}..{last} is {last - first + 1}",
            "TOO_MANY_NUMBERS",
        )
    reason = request.reason.strip()
    if not reason:
        violations.add(
            "reason", "is required: say why the numbers were never used", "REASON_REQUIRED"
        )
    elif len(request.reason) > MAX_REASON_LENGTH:
        violations.add(
            "reason",
            f"must be at most {MAX_REASON_LENGTH} characters, got {len(request.reason)}",
            "REASON_TOO_LONG",
        )
    check_series(request.series, violations, "series")
    check_period_text(request.period, violations, "period")


def _spans(values: list[int]) -> str:
    """ "4711-4713, 4720": values (sorted) as runs, for messages; the first 20 runs."""
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    shown_runs = [f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:20]]
    return ", ".join(shown_runs) + (", ..." if len(runs) > 20 else "")


def check_voidable(
    request: VoidRequest, issued: list[tuple[int, int]], voided: list[tuple[int, int]]
) -> None:
    """FAILED_PRECONDITION unless every value of the request was issued by IssueNumbers
    (`issued`: ranges that may overlap it) and none was voided already (`voided`)."""
    wanted = range(request.first_value, request.last_value + 1)
    covered = {
        v for a, b in issued for v in range(max(a, wanted.start), min(b, wanted.stop - 1) + 1)
    }
    missing = [v for v in wanted if v not in covered]
    what = describe(request.counter_type, request.series)
    where = f" of {request.period}" if request.period else ""
    if missing:
        raise FailedPrecondition(
            "NUMBER_NOT_ISSUED",
            f"{len(missing)} of these {what} numbers{where} were never issued by IssueNumbers "
            f"(not yet, or skipped by an advance): {_spans(missing)}",
            metadata={"values": _spans(missing), "count": str(len(missing))},
        )
    again = sorted(
        {v for a, b in voided for v in range(max(a, wanted.start), min(b, wanted.stop - 1) + 1)}
    )
    if again:
        raise FailedPrecondition(
            "NUMBER_ALREADY_VOIDED",
            f"{len(again)} of these {what} numbers{where} are voided already: {_spans(again)}",
            metadata={"values": _spans(again), "count": str(len(again))},
        )


def void_change(
    request: VoidRequest, current_value: int, api_key_id: int | None, now: datetime
) -> CounterChange:
    """The audit row of a void: the counter's value unchanged, the numbers and the reason."""
    return CounterChange(
        request.counter_type, "void", current_value, current_value, api_key_id, now,
        request.series, request.period, request.reason.strip(), request.first_value,
        request.last_value,
    )  # fmt: skip


# Numbers written in a counter's format, read back (a migration's supplied numbers).

_TOKEN_GROUPS = {"{YYYY}": "y4", "{YY}": "y2", "{MM}": "mm", "{FY}": "fy"}
_TOKEN_DIGITS = {"y4": r"[0-9]{4}", "y2": r"[0-9]{2}", "mm": r"0[1-9]|1[0-2]", "fy": r"[0-9]{4}"}


def _number_pattern(f: Format) -> re.Pattern[str]:
    """A pattern of the numbers `f` writes: prefix, at least `padding` digits, suffix, each
    date token a named group (a token used twice must repeat its value)."""
    seen: set[str] = set()

    def affix(text: str) -> str:
        parts = []
        for piece in re.split(r"(\{YYYY\}|\{YY\}|\{MM\}|\{FY\})", text):
            name = _TOKEN_GROUPS.get(piece)
            if name is None:
                parts.append(re.escape(piece))
            elif name in seen:
                parts.append(f"(?P={name})")
            else:
                seen.add(name)
                parts.append(f"(?P<{name}>{_TOKEN_DIGITS[name]})")
        return "".join(parts)

    prefix = affix(f.prefix)
    return re.compile(f"{prefix}(?P<value>[0-9]{{{f.padding},18}}){affix(f.suffix)}")


def read_number(f: Format, number: str) -> tuple[str, int] | None:
    """The period and value of `number` when it is written in format `f` and its period
    can be told from it (a yearly counter's number must show its year, a monthly one's its
    year and month, a fiscal one's its fiscal year); None otherwise."""
    match = _number_pattern(f).fullmatch(number)
    if match is None:
        return None
    groups = match.groupdict()
    value = int(groups["value"])
    year = groups.get("y4") or (f"20{groups['y2']}" if groups.get("y2") else None)
    period: str | None = ""
    if f.reset == YEARLY:
        period = year
    elif f.reset == MONTHLY:
        period = f"{year}-{groups['mm']}" if year and groups.get("mm") else None
    elif f.reset == FISCAL_YEARLY:
        period = f"FY{groups['fy']}" if groups.get("fy") else None
    if period is None or not period_fits(f.reset, period):  # 18 digits: within int64
        return None
    return period, value
