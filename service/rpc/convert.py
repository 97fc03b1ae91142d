"""Conversions every servicer shares: proto enums to domain names and back, timestamps."""

from datetime import UTC, datetime
from functools import cache
from typing import Any

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from service.errors import Violations


@cache
def _prefix(enum: EnumTypeWrapper) -> str:
    """ "PAYMENT_METHOD_" for PaymentMethod: its zero value's name less "UNSPECIFIED"."""
    return enum.DESCRIPTOR.values_by_number[0].name.removesuffix("UNSPECIFIED")


def enum_name(
    enum: EnumTypeWrapper,
    value: int,
    violations: Violations,
    field: str,
    unknown_reason: str = "ENUM_VALUE_UNKNOWN",
) -> str | None:
    """PAYMENT_METHOD_CASH -> "cash"; None for the zero value; a violation for a number
    the enum does not have (proto3 enums are open: any int32 arrives)."""
    if value == 0:
        return None
    descriptor = enum.DESCRIPTOR.values_by_number.get(value)
    if descriptor is None:
        violations.add(field, f"unknown {enum.DESCRIPTOR.name} value {value}", unknown_reason)
        return None
    return descriptor.name.removeprefix(_prefix(enum)).lower()


@cache  # every rendered advance and counter asks it, with a handful of names
def enum_value(enum: EnumTypeWrapper, name: str) -> Any:  # the enum's own value type
    return enum.Value(_prefix(enum) + name.upper())


def enum_value_name(enum: EnumTypeWrapper, name: str) -> str | None:
    """ "invoice" -> "COUNTER_TYPE_INVOICE"; None for a name the enum does not have."""
    spelled = _prefix(enum) + name.upper()
    return spelled if name and spelled in enum.DESCRIPTOR.values_by_name else None


def timestamp(value: datetime) -> Timestamp:
    """A time-zone-aware datetime (a naive one is taken as UTC) as a Timestamp, exactly.
    Computed here: Timestamp.FromDatetime was a tenth of rendering a batch of advances."""
    since = (value if value.tzinfo else value.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
