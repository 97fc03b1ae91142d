"""Counter rules, from the reference endpoint. Pure: no gRPC, no SQL."""

from dataclasses import dataclass, replace
from datetime import datetime

from service.errors import NotFound, OutOfRange, Violations

# The document types with counters: the reference's, in its order, then AR advances.
COUNTER_TYPES = (
    "order", "invoice", "quote", "po", "rma", "journal", "account", "vendor_bill",
    "ap_payment", "check", "transfer", "vendor_return", "refund", "inventory_txn",
    "work_order", "fixed_asset", "lease", "lease_payment", "deposit", "vendor_credit",
    "payment_batch", "ar_advance",
)  # fmt: skip
MAX_VALUE = 2**63 - 1  # int64: the wire type and the column type
MAX_PREFIX_LENGTH = 20
DEFAULT_PADDING = 7
MIN_PADDING, MAX_PADDING = 1, 12
MAX_BATCH = 50
MAX_ISSUE = 1000


@dataclass(frozen=True)
class Counter:
    counter_type: str  # the reference's name: "invoice", "po", "ar_advance", ...
    prefix: str
    padding: int
    current_value: int
    create_time: datetime
    update_time: datetime

    @property
    def next_number(self) -> str:
        """The next number to be issued; empty once the counter is exhausted."""
        if self.current_value >= MAX_VALUE:
            return ""
        return format_number(self.prefix, self.padding, self.current_value + 1)


@dataclass(frozen=True)
class AdvanceRequest:
    counter_type: str
    advance_to: int
    prefix: str | None = None
    padding: int | None = None


@dataclass(frozen=True)
class AdvanceResult:
    counter: Counter
    advanced: bool
    created: bool
    previous_value: int


@dataclass(frozen=True)
class IssueResult:
    counter: Counter
    first_value: int
    last_value: int

    @property
    def numbers(self) -> list[str]:
        c = self.counter
        return [
            format_number(c.prefix, c.padding, v)
            for v in range(self.first_value, self.last_value + 1)
        ]


def format_number(prefix: str, padding: int, value: int) -> str:
    """`prefix` + `value` zero-padded to at least `padding` digits."""
    return f"{prefix}{value:0{padding}d}"


def check_advance(request: AdvanceRequest, violations: Violations) -> None:
    """Adds every problem with `request` to `violations`. Prefix and padding are checked
    even when the counter exists (and they will be ignored): bad input is never accepted."""
    if request.advance_to < 0:
        violations.add("advance_to", "must be 0 or more", "ADVANCE_TO_NEGATIVE")
    if request.prefix is not None:
        check_prefix(request.prefix, violations, "prefix")
    if request.padding is not None and not MIN_PADDING <= request.padding <= MAX_PADDING:
        violations.add(
            "padding",
            f"must be {MIN_PADDING}..{MAX_PADDING}, got {request.padding}",
            "PADDING_OUT_OF_RANGE",
        )


def check_prefix(prefix: str, violations: Violations, field_path: str) -> None:
    if len(prefix) > MAX_PREFIX_LENGTH:
        violations.add(
            field_path,
            f"must be at most {MAX_PREFIX_LENGTH} characters, got {len(prefix)}",
            "PREFIX_TOO_LONG",
        )
    if not prefix.isprintable():
        violations.add(field_path, "must contain only printable characters", "PREFIX_NOT_PRINTABLE")


def new_counter_fields(request: AdvanceRequest) -> tuple[str, int]:
    """Prefix and padding for a counter that does not exist yet; prefix is then required."""
    if request.prefix is None:
        violations = Violations()
        violations.add(
            "prefix",
            f"is required: the entity has no {request.counter_type} counter yet",
            "PREFIX_REQUIRED",
        )
        violations.raise_if_any()
    padding = DEFAULT_PADDING if request.padding is None else request.padding
    return request.prefix or "", padding


@dataclass(frozen=True)
class CounterChange:
    """One row of a counter's audit trail."""

    counter_type: str
    action: str  # "create", "advance" or "issue"
    old_value: int | None
    new_value: int
    api_key_id: int | None
    time: datetime


def change_of(result: AdvanceResult, api_key_id: int | None) -> CounterChange:
    """The audit row of an AdvanceResult that changed its counter."""
    counter = result.counter
    if result.created:
        return CounterChange(
            counter.counter_type, "create", None, counter.current_value, api_key_id,
            counter.create_time,
        )  # fmt: skip
    return CounterChange(
        counter.counter_type, "advance", result.previous_value, counter.current_value,
        api_key_id, counter.update_time,
    )  # fmt: skip


def advanced(counter: Counter | None, request: AdvanceRequest, now: datetime) -> AdvanceResult:
    """`counter` (None: missing) raised to `request.advance_to`, which has passed
    check_advance: created when missing, unchanged when already there or past it."""
    if counter is None:
        prefix, padding = new_counter_fields(request)
        created = Counter(request.counter_type, prefix, padding, request.advance_to, now, now)
        return AdvanceResult(created, advanced=True, created=True, previous_value=0)
    previous = counter.current_value
    if previous >= request.advance_to:
        return AdvanceResult(counter, advanced=False, created=False, previous_value=previous)
    raised = replace(
        counter, current_value=request.advance_to, update_time=max(now, counter.update_time)
    )
    return AdvanceResult(raised, advanced=True, created=False, previous_value=previous)


def in_type_order(counters: list[Counter]) -> list[Counter]:
    return sorted(counters, key=lambda c: COUNTER_TYPES.index(c.counter_type))


def check_issue_count(count: int, violations: Violations) -> int:
    """The number of numbers to issue: 0 means 1."""
    count = count or 1
    if not 1 <= count <= MAX_ISSUE:
        violations.add(
            "count", f"must be 1..{MAX_ISSUE} (0 means 1), got {count}", "COUNT_OUT_OF_RANGE"
        )
    return count


def check_batch_size(size: int) -> None:
    if not 1 <= size <= MAX_BATCH:
        violations = Violations()
        violations.add(
            "counters", f"must hold 1..{MAX_BATCH} counters, got {size}", "BATCH_SIZE_OUT_OF_RANGE"
        )
        violations.raise_if_any()


def counter_not_found(counter_type: str) -> NotFound:
    return NotFound(
        "COUNTER_NOT_FOUND",
        f"the entity has no {counter_type} counter; AdvanceCounter with a prefix creates it",
        metadata={"counter_type": counter_type},
    )


def counter_exhausted(counter: Counter, count: int) -> OutOfRange:
    return OutOfRange(
        "COUNTER_EXHAUSTED",
        f"issuing {count} more {counter.counter_type} numbers would pass {MAX_VALUE}",
        metadata={
            "counter_type": counter.counter_type,
            "current_value": str(counter.current_value),
        },
    )
