"""Advance messages <-> domain values: parsing every writable field with its path,
resolving update masks (AIP-134), and building the Advance message back."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask

from service import values
from service.advances import domain
from service.advances.domain import Advance, AdvanceFields, Application, Line, LineFields, Ref
from service.errors import Violations
from service.rpc.convert import enum_name, enum_value, timestamp
from service.values import (
    check_identifier,
    check_text,
    format_cents,
    format_rate,
    is_identifier,
    parse_amount,
    parse_currency,
    parse_date,
    parse_rate,
    shown,
)

HREF = "/objects/accounts-receivable/advance/{key}"
# Limits checked before the work they bound (parsing items, resolving paths). An advance
# of at most this size keeps every response that carries one whole far under gRPC's
# default 4 MiB client limit (see ListAdvances).
MAX_ADVANCE_BYTES = 1024 * 1024
MAX_MASK_PATHS = 100
MAX_MASK_PATH_LENGTH = 100

Parse = Callable[[Any, Violations, str], Any]
NAME_LENGTH = 200  # of a referenced object's name; its id is an identifier (100)


@dataclass(frozen=True)
class Writable:
    """One writable leaf of Advance: where it lives in the message, how it parses,
    and which AdvanceFields attribute it fills."""

    attribute: str
    read: Callable[[pb.Advance], Any]
    parse: Parse


def _identifier(raw: str, violations: Violations, path: str) -> str:
    return check_identifier(raw, violations, path)


def _name(raw: str, violations: Violations, path: str) -> str:
    return check_identifier(raw, violations, path, NAME_LENGTH)


def _short_text(raw: str, violations: Violations, path: str) -> str:
    return check_text(raw, violations, path, max_length=100)


def _long_text(raw: str, violations: Violations, path: str) -> str:
    return check_text(raw, violations, path, max_length=1000)


def _date(raw: str, violations: Violations, path: str) -> date | None:
    return parse_date(raw, violations, path) if raw else None


def _payment_method(raw: int, violations: Violations, path: str) -> str | None:
    return enum_name(pb.PaymentMethod, raw, violations, path)


def _currency(raw: str, violations: Violations, path: str) -> str:
    return (parse_currency(raw, violations, path) or "") if raw else ""


def _rate(raw: str, violations: Violations, path: str) -> Decimal | None:
    return parse_rate(raw, violations, path) if raw else None


def _items(raw: Any, violations: Violations, path: str) -> tuple[LineFields, ...]:
    return tuple(_line(item, violations, f"{path}[{i}]") for i, item in enumerate(raw))


_NO_REF = Ref()


def _ref(message: Any, violations: Violations, path: str) -> Ref:
    ref_id, name = message.id, message.name
    if not (ref_id or name):
        return _NO_REF
    if is_identifier(ref_id) and is_identifier(name, NAME_LENGTH):
        return Ref(ref_id, name)  # the common case: no field paths to build
    return Ref(
        check_identifier(ref_id, violations, f"{path}.id"),
        check_identifier(name, violations, f"{path}.name", NAME_LENGTH),
    )


def _line(item: pb.AdvanceLine, violations: Violations, path: str) -> LineFields:
    dimensions = {}
    # Only the dimensions sent, in field order (which is DIMENSIONS' order): ListFields
    # reaches "class" too, a keyword as an attribute name.
    for field, message in item.dimensions.ListFields():
        ref = _ref(message, violations, f"{path}.dimensions.{field.name}")
        if ref is not _NO_REF:
            dimensions[field.name] = ref
    amount, memo = item.txn_amount, item.memo
    return LineFields(
        gl_account=_ref(item.gl_account, violations, f"{path}.gl_account"),
        account_label=_ref(item.account_label, violations, f"{path}.account_label"),
        txn_amount=parse_amount(amount, violations, f"{path}.txn_amount") if amount else None,
        memo=_long_text(memo, violations, f"{path}.memo") if memo else "",
        dimensions=dimensions,
    )


# Every path an update mask may name, to the field it writes. A path naming a message
# ("payment_information", "customer") writes every writable leaf below it.
WRITABLE: dict[str, Writable] = {
    "customer.id": Writable("customer_id", lambda a: a.customer.id, _identifier),
    "customer.name": Writable("customer_name", lambda a: a.customer.name, _name),
    "reference_number": Writable("reference_number", lambda a: a.reference_number, _short_text),
    "description": Writable("description", lambda a: a.description, _long_text),
    "payment_information.payment_date": Writable(
        "payment_date", lambda a: a.payment_information.payment_date, _date
    ),
    "payment_information.receipt_date": Writable(
        "receipt_date", lambda a: a.payment_information.receipt_date, _date
    ),
    "payment_information.payment_method": Writable(
        "payment_method", lambda a: a.payment_information.payment_method, _payment_method
    ),
    "payment_information.financial_entity.id": Writable(
        "financial_entity_id", lambda a: a.payment_information.financial_entity.id, _identifier
    ),
    "payment_information.currency.txn_currency": Writable(
        "txn_currency", lambda a: a.payment_information.currency.txn_currency, _currency
    ),
    "payment_information.currency.exchange_rate": Writable(
        "exchange_rate", lambda a: a.payment_information.currency.exchange_rate, _rate
    ),
    "payment_information.currency.exchange_rate_date": Writable(
        "exchange_rate_date", lambda a: a.payment_information.currency.exchange_rate_date, _date
    ),
    "payment_information.currency.exchange_rate_type_id": Writable(
        "exchange_rate_type_id",
        lambda a: a.payment_information.currency.exchange_rate_type_id,
        _identifier,
    ),
    "advance_summary.id": Writable(
        "advance_summary_id", lambda a: a.advance_summary.id, _identifier
    ),
    "gl_account.id": Writable("gl_account_id", lambda a: a.gl_account.id, _identifier),
    "gl_account.undeposited_gl_account_number": Writable(
        "undeposited_gl_account_number",
        lambda a: a.gl_account.undeposited_gl_account_number,
        _identifier,
    ),
    "attachment.id": Writable("attachment_id", lambda a: a.attachment.id, _identifier),
    "items": Writable("items", lambda a: a.items, _items),
}

_FIELD_PATHS = {path: f"advance.{path}" for path in WRITABLE}  # as violations name them

# Set by the service, never by a caller; naming one in a mask is INVALID_ARGUMENT.
OUTPUT_ONLY = (
    "key",
    "id",
    "href",
    "advance_number",
    "state",
    "total_entered",
    "txn_total_entered",
    "payment_information.total_paid",
    "payment_information.txn_total_paid",
    "payment_information.total_selected",
    "payment_information.txn_total_selected",
    "payment_information.total_due",
    "payment_information.total_txn_amount_due",
    "payment_information.currency.base_currency",
    "audit",
    "etag",
    "reversed_date",
    "applications",
)


def parse_fields(message: pb.Advance, paths: list[str], violations: Violations) -> AdvanceFields:
    """AdvanceFields holding the parsed values of `paths` (WRITABLE keys); the rest default."""
    values = {}
    for path in paths:
        writable = WRITABLE[path]
        raw = writable.read(message)
        if raw:  # an empty field parses to AdvanceFields' default: nothing to check
            values[writable.attribute] = writable.parse(raw, violations, _FIELD_PATHS[path])
    return AdvanceFields(**values)


def resolve_mask(message: pb.Advance, mask: FieldMask | None, violations: Violations) -> list[str]:
    """The WRITABLE paths an update writes: the mask's (expanded), or with no mask every
    populated writable field. Output-only fields populated without a mask are ignored,
    so a client can send back what it read."""
    if mask is None or not mask.paths:
        return [path for path, w in WRITABLE.items() if w.read(message)]
    chosen: list[str] = []
    for index, path in enumerate(mask.paths):
        field = f"update_mask.paths[{index}]"
        if len(path) > MAX_MASK_PATH_LENGTH:
            violations.add(
                field, f"{shown(path)} is not a field of Advance", "FIELD_MASK_PATH_UNKNOWN"
            )
            continue
        below = [w for w in WRITABLE if w.startswith(path + ".")]
        if path == "*":
            chosen += WRITABLE
        elif path in WRITABLE:
            chosen.append(path)
        elif any(path == o or path.startswith(o + ".") for o in OUTPUT_ONLY):
            violations.add(
                field, f"{shown(path)} is output only and cannot be written", "FIELD_NOT_WRITABLE"
            )
        elif path.startswith("items."):
            violations.add(
                field,
                f'{shown(path)}: items can only be replaced whole ("items")',
                "FIELD_MASK_PATH_INVALID",
            )
        elif below:
            chosen += below
        else:
            violations.add(
                field, f"{shown(path)} is not a field of Advance", "FIELD_MASK_PATH_UNKNOWN"
            )
    return list(dict.fromkeys(chosen))


def parse_key(raw: str, violations: Violations, path: str = "key") -> int:
    """A system-assigned key: a positive whole number, as a string."""
    if not raw:
        violations.add(path, "is required", "FIELD_REQUIRED")
    elif (
        len(raw) > len(str(domain.MAX_KEY))
        or not (raw.isascii() and raw.isdigit())
        or raw.startswith("0")
        or int(raw) > domain.MAX_KEY
    ):
        violations.add(
            path, f"must be an advance key, a positive number; got {shown(raw)}", "KEY_INVALID"
        )
    else:
        return int(raw)
    return 0


def check_size(message: pb.Advance) -> None:
    """INVALID_ARGUMENT at once for an advance too large to parse: nothing of it is read."""
    violations = Violations()
    if len(message.items) > domain.MAX_ITEMS:
        violations.add(
            "advance.items",
            f"must hold at most {domain.MAX_ITEMS} items; got {len(message.items)}",
            "TOO_MANY_ITEMS",
        )
    size = message.ByteSize()
    if size > MAX_ADVANCE_BYTES:
        violations.add(
            "advance",
            f"must be at most {MAX_ADVANCE_BYTES} bytes serialized; got {size}",
            "ADVANCE_TOO_LARGE",
        )
    violations.raise_if_any()


def check_mask_size(mask: FieldMask) -> None:
    if len(mask.paths) > MAX_MASK_PATHS:
        violations = Violations()
        violations.add(
            "update_mask.paths",
            f"must name at most {MAX_MASK_PATHS} paths; got {len(mask.paths)}",
            "FIELD_MASK_TOO_LONG",
        )
        violations.raise_if_any()


def parse_create(message: pb.Advance) -> tuple[AdvanceFields, str, str]:
    """Fields, supplied advance number ("" for none) and initial state of a new advance."""
    check_size(message)
    violations = Violations()
    fields = parse_fields(message, list(WRITABLE), violations)
    number = check_identifier(message.advance_number, violations, "advance.advance_number", 64)
    state = enum_name(pb.AdvanceState, message.state, violations, "advance.state") or domain.POSTED
    if state not in domain.CREATE_STATES and not violations.has("advance.state"):
        violations.add(
            "advance.state", "a new advance is DRAFT or POSTED", "STATE_NOT_ALLOWED_ON_CREATE"
        )
    domain.check_required(fields, violations)  # with the parse errors, in one answer
    violations.raise_if_any()
    return fields, number, state


@dataclass(frozen=True)
class Update:
    key: int
    patch: AdvanceFields
    attributes: set[str]  # of AdvanceFields, to take from the patch
    etag: str
    advance_number: str  # as sent; it must not differ from the stored one


def parse_update(request: pb.UpdateAdvanceRequest) -> Update:
    message = request.advance
    check_size(message)
    mask = request.update_mask if request.HasField("update_mask") else None
    if mask is not None:
        check_mask_size(mask)
    violations = Violations()
    key = parse_key(message.key, violations, "advance.key")
    paths = resolve_mask(message, mask, violations)
    patch = parse_fields(message, paths, violations)
    if not paths and not violations.items:
        violations.add("update_mask", "names no field to write", "FIELD_MASK_EMPTY")
    # Output-only fields are ignored, but a value no enum has is bad input all the same.
    enum_name(pb.AdvanceState, message.state, violations, "advance.state")
    violations.raise_if_any()
    attributes = {WRITABLE[p].attribute for p in paths}
    return Update(key, patch, attributes, message.etag, message.advance_number)


def required_date(raw: str, violations: Violations, path: str) -> date | None:
    if not raw:
        violations.add(path, "is required", "FIELD_REQUIRED")
        return None
    return parse_date(raw, violations, path)


def required_identifier(raw: str, violations: Violations, path: str) -> str:
    if not raw:
        violations.add(path, "is required", "FIELD_REQUIRED")
    return check_identifier(raw, violations, path)


def only_key(raw: str) -> int:
    violations = Violations()
    key = parse_key(raw, violations)
    violations.raise_if_any()
    return key


MAX_BATCH = 100


# A batch's response echoes every advance, with keys, totals and audit added (about 65
# bytes a line, 400 an advance): within these it stays under 3 MiB, short of gRPC's
# default 4 MiB client limit, so a caller always reads what was created.
MAX_BATCH_BYTES = 2 * 1024 * 1024
MAX_BATCH_ITEMS = 10_000


def check_batch(request: pb.BatchCreateAdvancesRequest) -> None:
    """INVALID_ARGUMENT at once for a batch of more than MAX_BATCH advances, or too large
    to answer in one response: nothing of it is read."""
    values.check_batch_size(len(request.requests), MAX_BATCH, "requests", "advances")
    violations = Violations()
    size = request.ByteSize()
    if size > MAX_BATCH_BYTES:
        violations.add(
            "requests",
            f"must be at most {MAX_BATCH_BYTES} bytes serialized; got {size}: split the batch",
            "BATCH_TOO_LARGE",
        )
    items = sum(len(item.advance.items) for item in request.requests)
    if items > MAX_BATCH_ITEMS:
        violations.add(
            "requests",
            f"must hold at most {MAX_BATCH_ITEMS} items in all; got {items}: split the batch",
            "TOO_MANY_ITEMS",
        )
    violations.raise_if_any()


def only_number(raw: str) -> str:
    violations = Violations()
    number = check_identifier(raw, violations, "advance_number", 64)
    violations.raise_if_any()
    return number


def one_of_key_and_number() -> None:
    violations = Violations()
    violations.add(
        "advance_number", "give the key or the advance number, not both", "ONE_OF_KEY_OR_NUMBER"
    )
    violations.raise_if_any()


def list_filters(request: pb.ListAdvancesRequest, violations: Violations) -> domain.Filters:
    def day(raw: str, field: str) -> date | None:
        return parse_date(raw, violations, field) if raw else None

    filters = domain.Filters(
        customer_id=check_identifier(request.customer_id, violations, "customer_id"),
        state=state_filter(request.state, violations),
        advance_number=check_identifier(request.advance_number, violations, "advance_number", 64),
        reference_number=check_identifier(request.reference_number, violations, "reference_number"),
        payment_date_from=day(request.payment_date_from, "payment_date_from"),
        payment_date_to=day(request.payment_date_to, "payment_date_to"),
    )
    start, end = filters.payment_date_from, filters.payment_date_to
    if start is not None and end is not None and end < start:
        violations.add(
            "payment_date_to",
            f"must be on or after payment_date_from ({start}); got {end}",
            "DATE_RANGE_INVALID",
        )
    return filters


def state_filter(value: int, violations: Violations) -> str:
    return enum_name(pb.AdvanceState, value, violations, "state") or ""


def full_view(value: int, violations: Violations) -> bool:
    return enum_name(pb.AdvanceView, value, violations, "view") == "full"


# Domain -> message.


def basic(key: int) -> pb.Advance:
    return pb.Advance(key=str(key), id=str(key), href=HREF.format(key=key))


def full(advance: Advance) -> pb.Advance:
    """The whole advance. Optional references are set only when they hold something, so
    output shows no `{}`."""
    return pb.Advance(**full_fields(advance))


def full_fields(advance: Advance) -> dict[str, Any]:
    """full's fields, nested messages as dicts, for a constructor to build in one call
    (an Advance, or a batch's result holding one): in a batch of 100 this runs for every
    advance, and building each nested message first, to be copied in, cost a third of it."""
    f = advance.fields
    key = str(advance.key)
    return dict(
        key=key,
        id=key,
        href=HREF.format(key=key),
        advance_number=advance.advance_number or "",
        customer={"id": f.customer_id, "name": f.customer_name},
        reference_number=f.reference_number,
        description=f.description,
        state=enum_value(pb.AdvanceState, advance.state),
        total_entered=format_cents(advance.total_entered),
        txn_total_entered=format_cents(advance.txn_total_entered),
        payment_information={
            "payment_date": str(f.payment_date),
            "receipt_date": str(f.receipt_date),
            "payment_method": enum_value(pb.PaymentMethod, f.payment_method or ""),
            "financial_entity": ({"id": f.financial_entity_id} if f.financial_entity_id else None),
            "currency": {
                "base_currency": advance.base_currency,
                "txn_currency": f.txn_currency or advance.base_currency,
                "exchange_rate_date": str(f.exchange_rate_date or ""),
                "exchange_rate_type_id": f.exchange_rate_type_id,
                "exchange_rate": format_rate(f.rate()),
            },
            "total_paid": format_cents(advance.total_paid),
            "txn_total_paid": format_cents(advance.txn_total_paid),
            "total_selected": _ZERO,
            "txn_total_selected": _ZERO,
            "total_due": format_cents(advance.total_due),
            "total_txn_amount_due": format_cents(advance.txn_total_due),
        },
        advance_summary={"id": f.advance_summary_id} if f.advance_summary_id else None,
        gl_account=(
            {
                "id": f.gl_account_id,
                "undeposited_gl_account_number": f.undeposited_gl_account_number,
            }
            if f.gl_account_id or f.undeposited_gl_account_number
            else None
        ),
        attachment={"id": f.attachment_id} if f.attachment_id else None,
        items=[_line_message(line) for line in advance.lines],
        audit={
            "create_time": timestamp(advance.create_time),
            "update_time": timestamp(advance.update_time),
            "created_by": str(advance.created_by or ""),
            "modified_by": str(advance.modified_by or ""),
        },
        etag=advance.etag,
        reversed_date=str(advance.reversed_date or ""),
        applications=[_application(a) for a in advance.applications],
        unapplied_applications=[_application(a) for a in advance.unapplied],
    )


_ZERO = format_cents(0)


def _line_message(line: Line) -> dict[str, Any]:
    """An AdvanceLine's fields, for the Advance constructor to build it from."""
    key, fields = str(line.key), line.fields
    label = fields.account_label
    return {
        "key": key,
        "id": key,
        "line_number": line.line_number,
        "gl_account": {"id": fields.gl_account.id, "name": fields.gl_account.name},
        "account_label": {"id": label.id, "name": label.name} if label.id or label.name else None,
        "txn_amount": format_cents(fields.txn_amount or 0),
        "base_amount": format_cents(line.base_amount),
        "memo": fields.memo,
        "dimensions": {
            name: {"id": ref.id, "name": ref.name} for name, ref in fields.dimensions.items()
        },
    }


def _application(a: Application) -> pb.Application:
    return pb.Application(
        invoice_number=a.invoice_number,
        amount=format_cents(a.amount),
        base_amount=format_cents(a.base_amount),
        applied_date=str(a.applied_date),
        key=str(a.key),
        apply_time=timestamp(a.apply_time) if a.apply_time else None,
        applied_by=str(a.applied_by or ""),
        unapply_time=timestamp(a.unapply_time) if a.unapply_time else None,
        unapplied_by=str(a.unapplied_by or ""),
    )
