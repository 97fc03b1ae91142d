"""AR advance rules, from the reference object. Pure: no gRPC, no SQL.

Amounts are integer cents. Field paths in violations are the request's
("advance.items[0].txn_amount"), so callers see exactly what to fix.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from service.entities.settings import EntitySettings
from service.errors import FailedPrecondition, NotFound, Violations
from service.values import MAX_CENTS, convert, format_cents, format_rate

DRAFT, POSTED = "draft", "posted"
PARTIALLY_APPLIED, FULLY_APPLIED, REVERSED = "partially_applied", "fully_applied", "reversed"
STATES = (DRAFT, POSTED, PARTIALLY_APPLIED, FULLY_APPLIED, REVERSED)
CREATE_STATES = (DRAFT, POSTED)
PAYMENT_METHODS = ("printed_check", "credit_card", "eft", "cash", "ach")
DIMENSIONS = (
    "location",
    "department",
    "project",
    "customer",
    "vendor",
    "employee",
    "item",
    "class",
)
MAX_ITEMS = 500
# Applications an advance may hold, in effect and unapplied together: each is a record
# in the advance's response, which must stay bounded.
MAX_APPLICATIONS = 500
MAX_KEY = 2**63 - 1  # keys are int64 row ids
ONE = Decimal(1)


@dataclass(frozen=True)
class Ref:
    """A reference to an object of another system: its id and, optionally, its name."""

    id: str = ""
    name: str = ""


@dataclass(frozen=True)
class LineFields:
    gl_account: Ref = Ref()
    account_label: Ref = Ref()
    txn_amount: int | None = None  # cents
    memo: str = ""
    dimensions: dict[str, Ref] = field(default_factory=dict)


@dataclass(frozen=True)
class AdvanceFields:
    """Everything a caller may write. None or "" means not given."""

    customer_id: str = ""
    customer_name: str = ""
    reference_number: str = ""
    description: str = ""
    payment_date: date | None = None
    receipt_date: date | None = None
    payment_method: str | None = None
    financial_entity_id: str = ""
    txn_currency: str = ""  # "" means the base currency
    exchange_rate: Decimal | None = None  # None means 1
    exchange_rate_date: date | None = None
    exchange_rate_type_id: str = ""
    advance_summary_id: str = ""
    gl_account_id: str = ""
    undeposited_gl_account_number: str = ""
    attachment_id: str = ""
    items: tuple[LineFields, ...] = ()

    def rate(self) -> Decimal:
        return self.exchange_rate if self.exchange_rate is not None else ONE


@dataclass(frozen=True)
class Line:
    key: int
    line_number: int
    fields: LineFields
    base_amount: int


@dataclass(frozen=True)
class Application:
    """One application to an invoice: its own record with its own posting date."""

    invoice_number: str
    amount: int  # transaction currency
    base_amount: int
    applied_date: date
    key: int = 0  # 0 until recorded
    apply_time: datetime | None = None
    applied_by: int | None = None
    unapply_time: datetime | None = None
    unapplied_by: int | None = None


@dataclass(frozen=True)
class Advance:
    key: int
    advance_number: str | None
    state: str
    fields: AdvanceFields
    base_currency: str
    lines: tuple[Line, ...]
    applications: tuple[Application, ...]
    total_entered: int
    txn_total_entered: int
    total_paid: int
    txn_total_paid: int
    ever_applied: bool
    reversed_date: date | None
    reversal_memo: str
    version: int
    create_time: datetime
    update_time: datetime
    created_by: int | None
    modified_by: int | None
    # Applications since unapplied: history, in effect no more.
    unapplied: tuple[Application, ...] = ()

    @property
    def total_due(self) -> int:
        return self.total_entered - self.total_paid

    @property
    def txn_total_due(self) -> int:
        return self.txn_total_entered - self.txn_total_paid

    @property
    def etag(self) -> str:
        return hashlib.sha256(f"{self.key}:{self.version}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Filters:
    """Which advances a listing shows ("" or None for any); all must hold."""

    customer_id: str = ""
    state: str = ""
    advance_number: str = ""
    reference_number: str = ""
    payment_date_from: date | None = None  # inclusive
    payment_date_to: date | None = None  # inclusive

    def written(self) -> list[str]:
        """The filters as text, for page tokens: a token serves only the filters it was
        made for."""
        return [
            self.customer_id, self.state, self.advance_number, self.reference_number,
            str(self.payment_date_from or ""), str(self.payment_date_to or ""),
        ]  # fmt: skip


@dataclass(frozen=True)
class Priced:
    """An advance's lines with their base amounts, and the totals."""

    base_amounts: tuple[int, ...]
    total_entered: int
    txn_total_entered: int


def check_fields(
    f: AdvanceFields, settings: EntitySettings, violations: Violations, base_currency: str = ""
) -> None:
    """Everything the reference requires of an advance, and the rules the entity's
    settings switch on. Adds to `violations`; a field already reported is not again.
    `base_currency` is the advance's own (an existing one keeps the one it was made in)."""
    check_required(f, violations)
    for index, item in enumerate(f.items):
        if settings.ar_account_labels and not item.account_label.id:
            violations.add(
                f"advance.items[{index}].account_label.id",
                "is required: the entity has account labels enabled",
                "ACCOUNT_LABEL_REQUIRED",
            )
    if settings.ar_automatic_summaries and not (
        f.financial_entity_id or f.undeposited_gl_account_number
    ):
        violations.add(
            "advance.payment_information.financial_entity.id",
            "is required, or else gl_account.undeposited_gl_account_number: the entity has "
            "AR automatic summaries enabled",
            "FINANCIAL_ENTITY_OR_UNDEPOSITED_ACCOUNT_REQUIRED",
        )
    check_currency(f, base_currency or settings.base_currency, violations)
    for index, item in enumerate(f.items):
        if not item.txn_amount:
            continue
        base = convert(item.txn_amount, f.rate())
        if base > MAX_CENTS:
            violations.add(
                f"advance.items[{index}].txn_amount",
                f"its base amount at this exchange rate would pass {format_cents(MAX_CENTS)}",
                "AMOUNT_TOO_LARGE",
            )
        elif base == 0:
            violations.add(
                f"advance.items[{index}].txn_amount",
                f"its base amount at this exchange rate rounds to 0.00: "
                f"{format_cents(item.txn_amount)} x {format_rate(f.rate())}",
                "BASE_AMOUNT_ZERO",
            )


def check_required(f: AdvanceFields, violations: Violations) -> None:
    """What every advance needs, whatever the entity's settings."""

    def require(value: object, path: str) -> None:
        if not value and not violations.has(path):
            violations.add(path, "is required", "FIELD_REQUIRED")

    require(f.customer_id, "advance.customer.id")
    require(f.payment_date, "advance.payment_information.payment_date")
    require(f.receipt_date, "advance.payment_information.receipt_date")
    require(f.payment_method, "advance.payment_information.payment_method")
    require(f.items, "advance.items")
    if len(f.items) > MAX_ITEMS:
        violations.add("advance.items", f"must hold at most {MAX_ITEMS} items", "TOO_MANY_ITEMS")
    for index, item in enumerate(f.items):
        location = item.dimensions.get("location")
        if item.gl_account.id and item.txn_amount and location and location.id:
            continue  # the paths are made only for a violation: a batch checks many items
        path = f"advance.items[{index}]"
        require(item.gl_account.id, f"{path}.gl_account.id")
        require(item.txn_amount, f"{path}.txn_amount")
        require(location and location.id, f"{path}.dimensions.location.id")


def check_currency(f: AdvanceFields, base_currency: str, violations: Violations) -> None:
    path = "advance.payment_information.currency.exchange_rate"
    if violations.has(path):
        return
    foreign = f.txn_currency not in ("", base_currency)
    if foreign and f.exchange_rate is None:
        violations.add(
            path,
            f"is required: the transaction currency {f.txn_currency} is not the base "
            f"currency {base_currency}",
            "EXCHANGE_RATE_REQUIRED",
        )
    if not foreign and f.rate() != ONE:
        violations.add(
            path,
            f"must be 1: the transaction currency is the base currency {base_currency}",
            "EXCHANGE_RATE_MUST_BE_ONE",
        )


def price(f: AdvanceFields) -> Priced:
    """Base amount of each line (txn x rate, half up to cents) and the totals."""
    base_amounts = tuple(convert(item.txn_amount or 0, f.rate()) for item in f.items)
    txn_total = sum(item.txn_amount or 0 for item in f.items)
    return Priced(base_amounts, sum(base_amounts), txn_total)


def merge(current: AdvanceFields, patch: AdvanceFields, names: set[str]) -> AdvanceFields:
    """`current` with the attributes in `names` taken from `patch`."""
    return replace(current, **{name: getattr(patch, name) for name in names})


# State rules. Each raises FailedPrecondition with a reason that names the rule.


def _refuse(reason: str, message: str, advance: Advance) -> FailedPrecondition:
    return FailedPrecondition(
        reason, message, metadata={"key": str(advance.key), "state": advance.state}
    )


def check_period_open(day: date, settings: EntitySettings, what: str) -> None:
    if not settings.period_open(day):
        raise FailedPrecondition(
            "PERIOD_CLOSED",
            f"the general ledger is closed through {settings.gl_closed_through}: "
            f"{what} {day} falls in a closed period",
            metadata={"gl_closed_through": str(settings.gl_closed_through), "date": str(day)},
        )


def check_changeable(advance: Advance, settings: EntitySettings, action: str) -> None:
    """Update and delete: only a DRAFT or POSTED advance that was never applied, in an
    open period."""
    if advance.state == REVERSED:
        raise _refuse("ADVANCE_REVERSED", f"a reversed advance cannot be {action}", advance)
    if advance.state in (PARTIALLY_APPLIED, FULLY_APPLIED):
        raise _refuse(
            "ADVANCE_APPLIED", f"an advance applied to invoices cannot be {action}", advance
        )
    if advance.ever_applied:
        raise _refuse(
            "ADVANCE_WAS_APPLIED",
            f"an advance once applied to an invoice (even if unapplied since) cannot be {action}",
            advance,
        )
    assert advance.fields.receipt_date is not None
    check_period_open(advance.fields.receipt_date, settings, "its receipt date")


def check_submit(advance: Advance, settings: EntitySettings) -> None:
    if advance.state != DRAFT:
        raise _refuse("ADVANCE_NOT_DRAFT", "only a DRAFT advance can be submitted", advance)
    assert advance.fields.receipt_date is not None
    check_period_open(advance.fields.receipt_date, settings, "its receipt date")


def check_not_before_receipt(advance: Advance, day: date, field_path: str) -> None:
    receipt = advance.fields.receipt_date
    if receipt is not None and day < receipt:
        violations = Violations()
        violations.add(
            field_path, f"must not be before the receipt date {receipt}", "DATE_BEFORE_RECEIPT_DATE"
        )
        violations.raise_if_any()


def check_reverse(advance: Advance, reversed_date: date, settings: EntitySettings) -> None:
    if advance.state == REVERSED:
        raise _refuse("ADVANCE_REVERSED", "the advance is already reversed", advance)
    if advance.state in (PARTIALLY_APPLIED, FULLY_APPLIED):
        raise _refuse(
            "ADVANCE_APPLIED",
            "an advance applied to invoices cannot be reversed: unapply it first",
            advance,
        )
    if advance.state != POSTED:
        raise _refuse("ADVANCE_NOT_POSTED", "only a POSTED advance can be reversed", advance)
    check_not_before_receipt(advance, reversed_date, "reversed_date")
    check_period_open(reversed_date, settings, "the reversal date")


def plan_apply(
    advance: Advance, invoice_number: str, amount: int, applied_date: date, settings: EntitySettings
) -> Application:
    """The application to record; the amount is in the transaction currency."""
    if advance.state == DRAFT:
        raise _refuse(
            "ADVANCE_NOT_POSTED", "a DRAFT advance cannot be applied: submit it first", advance
        )
    if advance.state == REVERSED:
        raise _refuse("ADVANCE_REVERSED", "a reversed advance cannot be applied", advance)
    if advance.state == FULLY_APPLIED:
        raise _refuse("ADVANCE_FULLY_APPLIED", "nothing is left to apply", advance)
    if len(advance.applications) + len(advance.unapplied) >= MAX_APPLICATIONS:
        raise _refuse(
            "TOO_MANY_APPLICATIONS",
            f"an advance holds at most {MAX_APPLICATIONS} applications, unapplied ones included",
            advance,
        )
    check_not_before_receipt(advance, applied_date, "applied_date")
    check_period_open(applied_date, settings, "the application date")
    if amount > advance.txn_total_due:
        raise FailedPrecondition(
            "AMOUNT_EXCEEDS_DUE",
            f"the amount is more than the {format_cents(advance.txn_total_due)} still due",
            metadata={
                "key": str(advance.key),
                "total_txn_amount_due": format_cents(advance.txn_total_due),
            },
        )
    # The last application takes exactly what is left in base currency, so rounding
    # never leaves a cent due or applies one too many.
    if amount == advance.txn_total_due:
        base = advance.total_due
    else:
        base = min(convert(amount, advance.fields.rate()), advance.total_due)
    return Application(invoice_number, amount, base, applied_date)


def plan_unapply(
    advance: Advance, invoice_number: str, application_key: int, settings: EntitySettings
) -> tuple[Application, ...]:
    """The applications to unapply: the one `application_key` names (0 for none), else
    every one to `invoice_number`. Each posting must lie in an open period: an
    application in a closed one cannot be taken back, though another to the same invoice
    in an open period can (name it by its key)."""
    if application_key:
        chosen = tuple(a for a in advance.applications if a.key == application_key)
        if not chosen:
            unapplied = any(a.key == application_key for a in advance.unapplied)
            raise FailedPrecondition(
                "APPLICATION_ALREADY_UNAPPLIED" if unapplied else "APPLICATION_NOT_FOUND",
                f"application {application_key} of the advance "
                + ("is already unapplied" if unapplied else "does not exist"),
                metadata={"key": str(advance.key), "application_key": str(application_key)},
            )
        if invoice_number and chosen[0].invoice_number != invoice_number:
            raise FailedPrecondition(
                "NOT_APPLIED_TO_INVOICE",
                f"application {application_key} is to invoice "
                f"{chosen[0].invoice_number!r}, not {invoice_number!r}",
                metadata={"key": str(advance.key), "invoice_number": invoice_number},
            )
    else:
        chosen = tuple(a for a in advance.applications if a.invoice_number == invoice_number)
        if not chosen:
            raise FailedPrecondition(
                "NOT_APPLIED_TO_INVOICE",
                f"the advance is not applied to invoice {invoice_number!r}",
                metadata={"key": str(advance.key), "invoice_number": invoice_number},
            )
    for application in chosen:
        if not settings.period_open(application.applied_date):
            raise FailedPrecondition(
                "PERIOD_CLOSED",
                f"the general ledger is closed through {settings.gl_closed_through}: "
                f"application {application.key} to {application.invoice_number!r}, dated "
                f"{application.applied_date}, falls in a closed period",
                metadata={
                    "gl_closed_through": str(settings.gl_closed_through),
                    "date": str(application.applied_date),
                    "application_key": str(application.key),
                },
            )
    return chosen


def state_for(txn_total_paid: int, txn_total_entered: int) -> str:
    """The state of a posted advance with this much applied."""
    if txn_total_paid == 0:
        return POSTED
    return FULLY_APPLIED if txn_total_paid >= txn_total_entered else PARTIALLY_APPLIED


# Transitions. Each takes an advance as it stands and returns it as it becomes (who changed
# it, and when, recorded on it), or raises the rule the change breaks. They read and write
# nothing else: the repository saves the result.


def created(
    fields: AdvanceFields,
    advance_number: str | None,
    state: str,
    settings: EntitySettings,
    key_id: int | None,
    now: datetime,
) -> Advance:
    """A new advance, DRAFT or POSTED, priced; its key is 0 until it is stored."""
    violations = Violations()
    check_fields(fields, settings, violations)
    violations.raise_if_any()
    assert fields.receipt_date is not None
    check_period_open(fields.receipt_date, settings, "the receipt date")
    priced = price(fields)
    return Advance(
        key=0,
        advance_number=advance_number,
        state=state,
        fields=fields,
        base_currency=settings.base_currency,
        lines=_lines(fields, priced),
        applications=(),
        total_entered=priced.total_entered,
        txn_total_entered=priced.txn_total_entered,
        total_paid=0,
        txn_total_paid=0,
        ever_applied=False,
        reversed_date=None,
        reversal_memo="",
        version=1,
        create_time=now,
        update_time=now,
        created_by=key_id,
        modified_by=key_id,
    )


def updated(
    advance: Advance,
    patch: AdvanceFields,
    names: set[str],
    advance_number: str,
    settings: EntitySettings,
    key_id: int | None,
    now: datetime,
) -> Advance:
    """The attributes `names` taken from `patch`; replaced items are priced again. A sent
    `advance_number` must be the advance's own: it is immutable."""
    check_changeable(advance, settings, "updated")
    if advance_number and advance_number != (advance.advance_number or ""):
        violations = Violations()
        violations.add(
            "advance.advance_number", "cannot change once the advance exists", "FIELD_IMMUTABLE"
        )
        violations.raise_if_any()
    fields = merge(advance.fields, patch, names)
    violations = Violations()
    check_fields(fields, settings, violations, advance.base_currency)
    violations.raise_if_any()
    assert fields.receipt_date is not None
    check_period_open(fields.receipt_date, settings, "the new receipt date")
    priced = price(fields)
    same_lines = fields.items == advance.fields.items and priced.base_amounts == tuple(
        line.base_amount for line in advance.lines
    )
    changed = replace(
        advance,
        fields=fields,
        lines=advance.lines if same_lines else _lines(fields, priced),
        total_entered=priced.total_entered,
        txn_total_entered=priced.txn_total_entered,
    )
    return _touched(changed, key_id, now)


def submitted(
    advance: Advance, settings: EntitySettings, key_id: int | None, now: datetime
) -> Advance:
    """DRAFT -> POSTED."""
    check_submit(advance, settings)
    return _touched(replace(advance, state=POSTED), key_id, now)


def reversed_on(
    advance: Advance,
    reversed_date: date,
    memo: str,
    settings: EntitySettings,
    key_id: int | None,
    now: datetime,
) -> Advance:
    """POSTED with nothing applied -> REVERSED on `reversed_date`."""
    check_reverse(advance, reversed_date, settings)
    changed = replace(advance, state=REVERSED, reversed_date=reversed_date, reversal_memo=memo)
    return _touched(changed, key_id, now)


def applied(
    advance: Advance,
    invoice_number: str,
    amount: int,
    applied_date: date,
    settings: EntitySettings,
    key_id: int | None,
    now: datetime,
) -> Advance:
    """With one more application (key 0 until stored): PARTIALLY or FULLY_APPLIED."""
    application = replace(
        plan_apply(advance, invoice_number, amount, applied_date, settings),
        apply_time=now,
        applied_by=key_id,
    )
    return _paid_by(advance, (*advance.applications, application), advance.unapplied, key_id, now)


def unapplied(
    advance: Advance,
    invoice_number: str,
    application_key: int,
    settings: EntitySettings,
    key_id: int | None,
    now: datetime,
) -> Advance:
    """With the applications plan_unapply chooses moved to its history, marked."""
    chosen = plan_unapply(advance, invoice_number, application_key, settings)
    keys = {a.key for a in chosen}
    marked = tuple(replace(a, unapply_time=now, unapplied_by=key_id) for a in chosen)
    remaining = tuple(a for a in advance.applications if a.key not in keys)
    return _paid_by(advance, remaining, (*advance.unapplied, *marked), key_id, now)


def _paid_by(
    advance: Advance,
    applications: tuple[Application, ...],
    history: tuple[Application, ...],
    key_id: int | None,
    now: datetime,
) -> Advance:
    """The advance with these applications in effect: what is paid (their sum, in both
    currencies) and the state that follows from it."""
    txn_paid = sum(a.amount for a in applications)
    changed = replace(
        advance,
        applications=in_date_order(applications),
        unapplied=in_date_order(history),
        total_paid=sum(a.base_amount for a in applications),
        txn_total_paid=txn_paid,
        state=state_for(txn_paid, advance.txn_total_entered),
        ever_applied=advance.ever_applied or bool(applications),
    )
    return _touched(changed, key_id, now)


def in_date_order(applications: Iterable[Application]) -> tuple[Application, ...]:
    """By posting date, then by when each was recorded (unrecorded last)."""
    latest = datetime.max.replace(tzinfo=UTC)
    return tuple(
        sorted(applications, key=lambda a: (a.applied_date, a.apply_time or latest, a.key))
    )


def _touched(advance: Advance, key_id: int | None, now: datetime) -> Advance:
    """A changed advance: a new version, by `key_id`, at `now`."""
    return replace(advance, version=advance.version + 1, update_time=now, modified_by=key_id)


def _lines(fields: AdvanceFields, priced: Priced) -> tuple[Line, ...]:
    """New lines for the items (keys 0 until stored), numbered 1, 2, ... in order."""
    return tuple(
        Line(0, number, item, base)
        for number, (item, base) in enumerate(
            zip(fields.items, priced.base_amounts, strict=True), start=1
        )
    )


def advance_not_found(key: int | str) -> NotFound:
    return NotFound("ADVANCE_NOT_FOUND", f"no advance with key {key}", metadata={"key": str(key)})
