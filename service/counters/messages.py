"""arcus.counters.v1 messages to the counters' domain and back: every field checked, every
problem reported at once with its field path."""

from dataclasses import dataclass
from datetime import date

from arcus.counters.v1 import counters_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask

from service.counters import domain
from service.errors import Violations
from service.rpc.convert import enum_name, enum_value, timestamp
from service.values import parse_date, shown

MAX_MASK_PATHS = 100
# Fields of Counter an update may not name: what identifies it, and what it reports.
_IDENTIFYING = ("counter_type", "series", "period")
_OUTPUT_ONLY = ("current_value", "next_number", "create_time", "update_time")


def counter_type_name(value: int, violations: Violations, field_path: str) -> str:
    """COUNTER_TYPE_INVOICE -> "invoice"; a violation for UNSPECIFIED or an unknown number."""
    if value == pb.COUNTER_TYPE_UNSPECIFIED:
        violations.add(field_path, "is required", "COUNTER_TYPE_REQUIRED")
    name = enum_name(pb.CounterType, value, violations, field_path, "COUNTER_TYPE_UNKNOWN")
    return name or ""


def reset_name(value: int, violations: Violations, field_path: str) -> str | None:
    """COUNTER_RESET_YEARLY -> "yearly"; None for UNSPECIFIED."""
    return enum_name(pb.CounterReset, value, violations, field_path, "RESET_UNKNOWN")


def advance_request(message: pb.AdvanceCounterRequest) -> domain.AdvanceRequest:
    violations = Violations()
    expected = (
        message.expected_current_value if message.HasField("expected_current_value") else None
    )
    if expected is not None and expected < 0:
        violations.add(
            "expected_current_value", "must be 0 or more", "EXPECTED_CURRENT_VALUE_NEGATIVE"
        )
    request = domain.AdvanceRequest(
        counter_type=counter_type_name(message.counter_type, violations, "counter_type"),
        advance_to=message.advance_to,
        prefix=message.prefix if message.HasField("prefix") else None,
        padding=message.padding if message.HasField("padding") else None,
        series=message.series,
        period=message.period,
        suffix=message.suffix if message.HasField("suffix") else None,
        reset=reset_name(message.reset, violations, "reset"),
        validate_only=message.validate_only,
        expected_current_value=expected,
    )
    domain.check_advance(request, violations)
    violations.raise_if_any()
    return request


@dataclass(frozen=True)
class CounterName:
    """Which counter a read or an update names."""

    counter_type: str
    series: str
    period: str


def counter_name(
    counter_type: int, series: str, period: str, violations: Violations, under: str = ""
) -> CounterName:
    name = counter_type_name(counter_type, violations, f"{under}counter_type")
    domain.check_series(series, violations, f"{under}series")
    domain.check_period_text(period, violations, f"{under}period")
    return CounterName(name, series, period)


@dataclass(frozen=True)
class Issue:
    counter_type: str
    series: str
    count: int
    document_date: date | None


def issue_request(message: pb.IssueNumbersRequest) -> Issue:
    violations = Violations()
    name = counter_type_name(message.counter_type, violations, "counter_type")
    count = domain.check_issue_count(message.count, violations)
    domain.check_series(message.series, violations, "series")
    day = None
    if message.document_date:
        day = parse_date(message.document_date, violations, "document_date")
    violations.raise_if_any()
    return Issue(name, message.series, count, day)


@dataclass(frozen=True)
class Listing:
    counter_type: str | None
    series: str | None


def type_filter(value: int, violations: Violations) -> str | None:
    """A CounterType a listing is limited to; None for UNSPECIFIED (every type)."""
    return enum_name(pb.CounterType, value, violations, "counter_type", "COUNTER_TYPE_UNKNOWN")


def list_filters(message: pb.ListCountersRequest) -> Listing:
    violations = Violations()
    kind = type_filter(message.counter_type, violations)
    domain.check_series(message.series, violations, "series")
    violations.raise_if_any()
    return Listing(kind, message.series or None)


@dataclass(frozen=True)
class Update:
    name: CounterName
    changes: dict[str, object]


def update_request(message: pb.UpdateCounterRequest) -> Update:
    """The counter named and the format changes: the mask's fields, or with no mask the
    populated ones among UPDATABLE."""
    counter = message.counter
    mask = message.update_mask if message.HasField("update_mask") else None
    violations = Violations()
    if mask is not None and len(mask.paths) > MAX_MASK_PATHS:
        violations.add(
            "update_mask.paths",
            f"must name at most {MAX_MASK_PATHS} paths; got {len(mask.paths)}",
            "FIELD_MASK_TOO_LONG",
        )
        violations.raise_if_any()
    name = counter_name(
        counter.counter_type, counter.series, counter.period, violations, "counter."
    )
    paths = _resolve_mask(counter, mask, violations)
    changes: dict[str, object] = {}
    for path in paths:
        where = f"counter.{path}"
        if path == "padding":
            domain.check_padding(counter.padding, violations, where)
            changes[path] = counter.padding
        elif path == "reset":
            changes[path] = reset_name(counter.reset, violations, where) or domain.NEVER
        else:
            value = getattr(counter, path)
            domain.check_affix(value, violations, where)
            changes[path] = value
    if not paths and not violations.items:
        violations.add("update_mask", "names no field to write", "FIELD_MASK_EMPTY")
    violations.raise_if_any()
    return Update(name, changes)


def _resolve_mask(counter: pb.Counter, mask: FieldMask | None, violations: Violations) -> list[str]:
    if mask is None or not mask.paths:
        return [path for path in domain.UPDATABLE if _populated(counter, path)]
    chosen: list[str] = []
    for index, path in enumerate(mask.paths):
        where = f"update_mask.paths[{index}]"
        if path == "*":
            chosen += domain.UPDATABLE
        elif path in domain.UPDATABLE:
            chosen.append(path)
        elif path in _IDENTIFYING:
            violations.add(
                where,
                f"{path} names the counter and cannot be changed; "
                "create a new series to number differently",
                "FIELD_NOT_WRITABLE",
            )
        elif path in _OUTPUT_ONLY:
            violations.add(
                where,
                f"{path} is output only; AdvanceCounter moves a counter's value",
                "FIELD_NOT_WRITABLE",
            )
        else:
            violations.add(
                where, f"{shown(path)} is not a field of Counter", "FIELD_MASK_PATH_UNKNOWN"
            )
    return list(dict.fromkeys(chosen))


def _populated(counter: pb.Counter, path: str) -> bool:
    return bool(getattr(counter, path))


def counter_message(counter: domain.Counter) -> pb.Counter:
    message = pb.Counter(
        counter_type=enum_value(pb.CounterType, counter.counter_type),
        prefix=counter.prefix,
        padding=counter.padding,
        current_value=counter.current_value,
        next_number=counter.next_number,
        series=counter.series,
        period=counter.period,
        suffix=counter.suffix,
        reset=enum_value(pb.CounterReset, counter.reset),
    )
    if counter.create_time is not None:
        message.create_time.CopyFrom(timestamp(counter.create_time))
    if counter.update_time is not None:
        message.update_time.CopyFrom(timestamp(counter.update_time))
    return message


def advance_response(result: domain.AdvanceResult) -> pb.AdvanceCounterResponse:
    return pb.AdvanceCounterResponse(
        counter=counter_message(result.counter),
        advanced=result.advanced,
        created=result.created,
        previous_value=result.previous_value,
    )


@dataclass(frozen=True)
class EventFilters:
    counter_type: str | None
    series: str | None
    period: str | None


def event_filters(message: pb.ListCounterEventsRequest) -> EventFilters:
    violations = Violations()
    kind = type_filter(message.counter_type, violations)
    domain.check_series(message.series, violations, "series")
    domain.check_period_text(message.period, violations, "period")
    violations.raise_if_any()
    return EventFilters(kind, message.series or None, message.period or None)


def event_message(event: domain.Event) -> pb.CounterEvent:
    return pb.CounterEvent(
        event_id=str(event.event_key),
        counter_type=enum_value(pb.CounterType, event.counter_type),
        series=event.series,
        period=event.period,
        kind=enum_value(pb.CounterEventKind, event.kind),
        previous_value=event.previous_value,
        new_value=event.new_value,
        first_value=event.first_value or 0,
        last_value=event.last_value or 0,
        reason=event.reason,
        key_id="" if event.api_key_id is None else str(event.api_key_id),
        idempotency_key=event.idempotency_key or "",
        create_time=timestamp(event.time),
    )


def void_request(message: pb.VoidNumbersRequest) -> domain.VoidRequest:
    violations = Violations()
    request = domain.VoidRequest(
        counter_type=counter_type_name(message.counter_type, violations, "counter_type"),
        series=message.series,
        period=message.period,
        first_value=message.first_value,
        last_value=message.last_value,
        reason=message.reason,
    )
    domain.check_void(request, violations)
    violations.raise_if_any()
    return request
