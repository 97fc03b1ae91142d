"""Advances, their lines and applications in the database. Every method runs inside
the caller's transaction; every statement is limited to the caller's tenant
(db/tenancy.py), child tables included."""

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Row,
    Table,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from service.advances.domain import (
    DRAFT,
    Advance,
    AdvanceFields,
    Application,
    Filters,
    Line,
    LineFields,
    Ref,
    in_date_order,
)
from service.auth.keys import Tenant
from service.db.bulk import insert_rows, json_rows, rows_select
from service.db.driver import Ctes, Prepared
from service.db.ids import new_id, new_ids
from service.db.models import Advance as AdvanceRow
from service.db.models import AdvanceApplication as ApplicationRow
from service.db.models import AdvanceLine as LineRow
from service.db.tenancy import of_tenant, tenant_params
from service.entities.settings import EntitySettings
from service.entities.store import SETTINGS_UNCHANGED_CTE, settings_unchanged_params
from service.values import format_rate


class NumberTaken(Exception):
    """The advance number is in use: the unique constraint caught a concurrent create."""


@contextmanager
def _number_unique() -> Iterator[None]:
    """The unique constraint on advance numbers, violated, as NumberTaken."""
    try:
        yield
    except IntegrityError as error:
        if "advance_number" in str(error.orig):
            raise NumberTaken() from error
        raise


def _as_stored(advance: Advance, keys: Iterator[int], number: str | None) -> Advance:
    """A new advance with the keys it is stored under (drawn from `keys`) and its number,
    as reading it back would give it (the exchange rate is stored as normalised text)."""
    rate = advance.fields.exchange_rate
    return replace(
        advance,
        key=next(keys),
        advance_number=number,
        lines=tuple(
            Line(next(keys), line.line_number, line.fields, line.base_amount)
            for line in advance.lines
        ),
        fields=(
            advance.fields
            if rate is None
            else replace(advance.fields, exchange_rate=Decimal(format_rate(rate)))
        ),
    )


# The columns of an advance's own row that change over its life.
_HEADER_COLUMNS = (
    "state", "total_paid", "txn_total_paid", "ever_applied", "reversed_date",
    "reversal_memo", "version", "update_time", "modified_by", "customer_id",
    "customer_name", "reference_number", "description", "payment_date", "receipt_date",
    "payment_method", "financial_entity_id", "txn_currency", "exchange_rate",
    "exchange_rate_date", "exchange_rate_type_id", "advance_summary_id", "gl_account_id",
    "undeposited_gl_account_number", "attachment_id", "total_entered", "txn_total_entered",
)  # fmt: skip
# A new advance's row, but the tenant's columns.
_ADVANCE_COLUMNS = ("id", "advance_number", "base_currency", "create_time", "created_by",
                    *_HEADER_COLUMNS)  # fmt: skip


def _header(advance: Advance) -> list[Any]:
    """The values of _HEADER_COLUMNS."""
    f = advance.fields
    return [
        advance.state, advance.total_paid, advance.txn_total_paid, advance.ever_applied,
        advance.reversed_date, advance.reversal_memo, advance.version, advance.update_time,
        advance.modified_by, f.customer_id, f.customer_name, f.reference_number,
        f.description, f.payment_date, f.receipt_date, f.payment_method,
        f.financial_entity_id, f.txn_currency,
        "" if f.exchange_rate is None else format_rate(f.exchange_rate),
        f.exchange_rate_date, f.exchange_rate_type_id, f.advance_summary_id,
        f.gl_account_id, f.undeposited_gl_account_number, f.attachment_id,
        advance.total_entered, advance.txn_total_entered,
    ]  # fmt: skip


def _header_values(advance: Advance) -> dict[str, Any]:
    return dict(zip(_HEADER_COLUMNS, _header(advance), strict=True))


def _row(advance: Advance, key: int, number: object) -> list[Any]:
    """The values of _ADVANCE_COLUMNS."""
    a = advance
    return [key, number, a.base_currency, a.create_time, a.created_by, *_header(a)]


def _row_of(advance: Advance) -> dict[str, Any]:
    return dict(
        zip(_ADVANCE_COLUMNS, _row(advance, advance.key, advance.advance_number), strict=True)
    )


_LINE_COLUMNS = (
    "id", "advance_id", "line_number", "gl_account_id", "gl_account_name", "account_label_id",
    "account_label_name", "txn_amount", "base_amount", "memo", "dimensions",
)  # fmt: skip


def _line_row(advance_key: int, key: int, line: Line) -> list[Any]:
    """The values of _LINE_COLUMNS."""
    f = line.fields
    return [
        key, advance_key, line.line_number, f.gl_account.id, f.gl_account.name,
        f.account_label.id, f.account_label.name, f.txn_amount, line.base_amount, f.memo,
        {name: {"id": ref.id, "name": ref.name} for name, ref in f.dimensions.items()},
    ]  # fmt: skip


def _line_rows_of(advance_key: int, lines: Iterable[Line]) -> list[dict[str, Any]]:
    """Rows of an advance's lines, with their keys."""
    return [
        dict(zip(_LINE_COLUMNS, _line_row(advance_key, line.key, line), strict=True))
        for line in lines
    ]


def _fields(row: Row, items: tuple[LineFields, ...]) -> AdvanceFields:
    return AdvanceFields(
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        reference_number=row.reference_number,
        description=row.description,
        payment_date=row.payment_date,
        receipt_date=row.receipt_date,
        payment_method=row.payment_method,
        financial_entity_id=row.financial_entity_id,
        txn_currency=row.txn_currency,
        exchange_rate=Decimal(row.exchange_rate) if row.exchange_rate else None,
        exchange_rate_date=row.exchange_rate_date,
        exchange_rate_type_id=row.exchange_rate_type_id,
        advance_summary_id=row.advance_summary_id,
        gl_account_id=row.gl_account_id,
        undeposited_gl_account_number=row.undeposited_gl_account_number,
        attachment_id=row.attachment_id,
        items=items,
    )


def _line(row: Row) -> Line:
    fields = LineFields(
        gl_account=Ref(row.gl_account_id, row.gl_account_name),
        account_label=Ref(row.account_label_id, row.account_label_name),
        txn_amount=row.txn_amount,
        memo=row.memo,
        dimensions={name: Ref(**ref) for name, ref in row.dimensions.items()},
    )
    return Line(row.id, row.line_number, fields, row.base_amount)


def _application(row: Row) -> Application:
    return Application(
        invoice_number=row.invoice_number,
        amount=row.amount,
        base_amount=row.base_amount,
        applied_date=row.applied_date,
        key=row.id,
        apply_time=row.create_time,
        applied_by=row.applied_by,
        unapply_time=row.unapply_time,
        unapplied_by=row.unapplied_by,
    )


def _advance(row: Row, lines: list[Line], applications: list[Application]) -> Advance:
    ordered = tuple(sorted(lines, key=lambda line: line.line_number))
    return Advance(
        key=row.id,
        advance_number=row.advance_number,
        state=row.state,
        fields=_fields(row, tuple(line.fields for line in ordered)),
        base_currency=row.base_currency,
        lines=ordered,
        applications=in_date_order(a for a in applications if a.unapply_time is None),
        unapplied=in_date_order(a for a in applications if a.unapply_time is not None),
        total_entered=row.total_entered,
        txn_total_entered=row.txn_total_entered,
        total_paid=row.total_paid,
        txn_total_paid=row.txn_total_paid,
        ever_applied=row.ever_applied,
        reversed_date=row.reversed_date,
        reversal_memo=row.reversal_memo,
        version=row.version,
        create_time=row.create_time,
        update_time=row.update_time,
        created_by=row.created_by,
        modified_by=row.modified_by,
    )


# Statements built once (building them per call cost more than running them).
_ADVANCES = cast(Table, AdvanceRow.__table__)
_LINES = cast(Table, LineRow.__table__)
_APPLICATIONS = cast(Table, ApplicationRow.__table__)
_MINE = of_tenant(_ADVANCES)
_THIS = _MINE & (_ADVANCES.c.id == bindparam("b_key"))
_SET_NUMBER = update(_ADVANCES).where(_THIS).values(advance_number=bindparam("b_number"))
_KEY_OF_NUMBER = (
    select(_ADVANCES.c.id).where(_MINE & (_ADVANCES.c.advance_number == bindparam("b_number")))
).limit(1)
_NUMBERS_TAKEN = select(_ADVANCES.c.advance_number).where(
    _MINE & _ADVANCES.c.advance_number.in_(bindparam("b_numbers", expanding=True))
)
_GET = select(_ADVANCES).where(_THIS)
_GET_FOR_UPDATE = _GET.with_for_update()  # SQLite: BEGIN IMMEDIATE already serialises
_MANY = (
    select(_ADVANCES)
    .where(_MINE & _ADVANCES.c.id.in_(bindparam("b_keys", expanding=True)))
    .order_by(_ADVANCES.c.id)
)
_LINES_OF = select(_LINES).where(
    of_tenant(_LINES) & _LINES.c.advance_id.in_(bindparam("b_keys", expanding=True))
)
_DELETE_LINES = delete(_LINES).where(
    of_tenant(_LINES) & (_LINES.c.advance_id == bindparam("b_key"))
)
_APPLICATIONS_OF = select(_APPLICATIONS).where(
    of_tenant(_APPLICATIONS) & _APPLICATIONS.c.advance_id.in_(bindparam("b_keys", expanding=True))
)
_UNAPPLY = (
    update(_APPLICATIONS)
    .where(
        of_tenant(_APPLICATIONS)
        & (_APPLICATIONS.c.advance_id == bindparam("b_key"))
        & (_APPLICATIONS.c.id == bindparam("b_application"))
        & _APPLICATIONS.c.unapply_time.is_(None)
    )
    .values(unapply_time=bindparam("b_unapply_time"), unapplied_by=bindparam("b_unapplied_by"))
)


@functools.cache
def _save_statement(columns: tuple[str, ...]) -> Any:
    """The update of an advance's row, for these columns (those _header_values gives)."""
    return (
        update(_ADVANCES)
        # The version read under the row lock: a write never lands on another than it read.
        .where(_THIS & (_ADVANCES.c.version == bindparam("b_version")))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


_DELETE = delete(_ADVANCES).where(_THIS)


class Refused(Enum):
    """Why insert_alone wrote nothing."""

    SETTINGS_CHANGED = "the entity's settings changed since they were read"
    FIRST_ISSUE = "the counter has issued no number yet (its first issue fixes its reset)"
    NOT_NUMBERED = "the counter can't number it in the statement"


@functools.cache
def _insert_alone(numbering: tuple[str, str] | None) -> Prepared:
    """Advances (`b_rows`) and their lines (`b_lines`) in one statement, only while the
    entity's settings are unchanged; the lines only with the advances, and, with
    `numbering` (the counters' CTEs and their number expression), the advances only with
    their numbers. Its one row: each advance's number by key (NULL when none was
    written), whether the settings held, and whether the counter's series exists but has
    issued nothing yet."""
    ctes = [SETTINGS_UNCHANGED_CTE]
    given, gate = None, "settings_unchanged"
    if numbering is not None:  # a row's number slot: its offset, or none for a DRAFT
        issue, number = numbering
        ctes += ["issue_allowed AS (SELECT FROM settings_unchanged)", issue]
        number = number.replace("{offset}", "CAST({slot} AS bigint)")
        given = {"advance_number": f"CASE WHEN {{slot}} IS NOT NULL THEN {number} END"}
        gate = "numbered"
    advance = rows_select(_ADVANCES, _ADVANCE_COLUMNS, "b_rows", given, gate)
    lines = rows_select(_LINES, _LINE_COLUMNS, "b_lines")
    ctes += [
        f"advance AS (INSERT INTO advances (entity_id, mode, {', '.join(_ADVANCE_COLUMNS)}) "
        f"{advance} RETURNING id, advance_number)",
        f"lines AS (INSERT INTO advance_lines (entity_id, mode, {', '.join(_LINE_COLUMNS)}) "
        f"{lines} WHERE EXISTS (SELECT FROM advance))",
    ]
    first_issue = "(SELECT pending FROM first_issue)" if numbering is not None else "false"
    return Prepared(
        text(
            f"WITH {', '.join(ctes)} "
            "SELECT (SELECT json_object_agg(id, advance_number) FROM advance), "
            f"EXISTS (SELECT FROM settings_unchanged), {first_issue}"
        )
    )


class AdvanceRepository:
    def __init__(self, conn: Connection, tenant: Tenant) -> None:
        self.conn = conn
        self.tenant = tenant
        self.mine = tenant_params(tenant)

    def numbers_taken(self, numbers: list[str]) -> set[str]:
        """Those of `numbers` that advances of the tenant already have (one query)."""
        if not numbers:
            return set()
        found = self.conn.execute(_NUMBERS_TAKEN, {**self.mine, "b_numbers": numbers})
        return set(found.scalars())

    def insert_many(
        self, advances: list[Advance], numbers: Mapping[int, str] | None = None
    ) -> list[Advance]:
        """Stores new advances (keys 0) and their lines, in two statements whatever their
        number, `numbers[i]` (issued just now) numbering the i-th when given; they are
        returned as reading them back would give them. NumberTaken if a number is in use
        (the unique constraint is the final word on it)."""
        stored = self._keyed(advances, numbers or {})
        with _number_unique():
            insert_rows(self.conn, _ADVANCES, self.tenant, [_row_of(a) for a in stored])
        lines = [row for a in stored for row in _line_rows_of(a.key, a.lines)]
        insert_rows(self.conn, _LINES, self.tenant, lines)
        return stored

    def insert_alone(
        self, advances: list[Advance], settings: EntitySettings, numbering: Ctes | None
    ) -> "list[Advance] | Refused":
        """Stores new advances and their lines in one statement, atomic by itself (so it
        may run outside a transaction), only while the entity's settings are still
        `settings` (those they were made with); the POSTED ones numbered, in order, by
        `numbering` (the counters' CTEs, which issue only with `issue_allowed`). Returned
        as reading them back would give them; Refused, with nothing written, where it
        can't; NumberTaken if a number is in use."""
        drawn = iter(new_ids(len(advances) + sum(len(a.lines) for a in advances)))
        # Each advance's keys: its own, then its lines', as _as_stored draws them.
        keyed = [[next(drawn) for _ in range(1 + len(a.lines))] for a in advances]
        rows, lines, offset = [], [], 0
        for advance, (key, *line_keys) in zip(advances, keyed, strict=True):
            numbered = advance.state != DRAFT
            # Its number slot carries its offset from the first number issued.
            rows.append(_row(advance, key, offset if numbered else None))
            offset += numbered
            lines += [
                _line_row(key, line_key, line)
                for line_key, line in zip(line_keys, advance.lines, strict=True)
            ]
        lent = (numbering.sql, numbering.expression) if numbering else None
        params = {
            **self.mine, **settings_unchanged_params(settings),
            **(numbering.params if numbering else {}),
            "b_rows": json_rows(rows), "b_lines": json_rows(lines),
        }  # fmt: skip
        with _number_unique():
            made = _insert_alone(lent).row(self.conn, params)
        assert made is not None
        numbers, held, first_issue = made
        if not held:
            return Refused.SETTINGS_CHANGED
        if numbers is None:
            return Refused.FIRST_ISSUE if first_issue else Refused.NOT_NUMBERED
        return [
            _as_stored(advance, iter(keys), numbers[str(keys[0])])
            for advance, keys in zip(advances, keyed, strict=True)
        ]

    @staticmethod
    def _keyed(advances: list[Advance], numbers: Mapping[int, str]) -> list[Advance]:
        keys = iter(new_ids(len(advances) + sum(len(a.lines) for a in advances)))
        return [
            _as_stored(advance, keys, numbers.get(i, advance.advance_number))
            for i, advance in enumerate(advances)
        ]

    def set_number(self, key: int, advance_number: str) -> None:
        """Numbers an advance; NumberTaken if another advance has that number."""
        with _number_unique():
            self.conn.execute(_SET_NUMBER, {**self.mine, "b_key": key, "b_number": advance_number})

    def save(self, before: Advance, after: Advance) -> None:
        """Writes what a transition changed: the advance's row, its lines when they were
        replaced, the applications it recorded and those it unapplied."""
        header = _header_values(after)
        values = {f"v_{name}": value for name, value in header.items()}
        self.conn.execute(
            _save_statement(tuple(header)),
            {**self.mine, "b_key": before.key, "b_version": before.version, **values},
        )
        if after.lines != before.lines:
            self.conn.execute(_DELETE_LINES, {**self.mine, "b_key": before.key})
            keyed = [replace(line, key=new_id()) for line in after.lines]
            insert_rows(self.conn, _LINES, self.tenant, _line_rows_of(before.key, keyed))
        recorded = [a for a in after.applications if a.key == 0]
        insert_rows(
            self.conn,
            _APPLICATIONS,
            self.tenant,
            [self._application_values(before.key, a) for a in recorded],
        )
        already = {a.key for a in before.unapplied}
        for application in after.unapplied:
            if application.key not in already:
                self.conn.execute(
                    _UNAPPLY,
                    {
                        **self.mine,
                        "b_key": before.key,
                        "b_application": application.key,
                        "b_unapply_time": application.unapply_time,
                        "b_unapplied_by": application.unapplied_by,
                    },
                )

    def _application_values(self, key: int, application: Application) -> dict[str, Any]:
        return {
            "id": new_id(),
            "advance_id": key,
            "invoice_number": application.invoice_number,
            "amount": application.amount,
            "base_amount": application.base_amount,
            "applied_date": application.applied_date,
            "create_time": application.apply_time,
            "applied_by": application.applied_by,
            "unapply_time": None,
            "unapplied_by": None,
        }

    def get(self, key: int, lock: bool = False) -> Advance | None:
        query = _GET_FOR_UPDATE if lock else _GET
        row = self.conn.execute(query, {**self.mine, "b_key": key}).one_or_none()
        if row is None:
            return None
        return self._assemble([row])[0]

    def _assemble(self, rows: list[Row]) -> list[Advance]:
        """Whole advances for header rows: one query for all their lines, one for all
        their applications."""
        keys = [row.id for row in rows]
        lines: dict[int, list[Line]] = defaultdict(list)
        for line_row in self.conn.execute(_LINES_OF, {**self.mine, "b_keys": keys}):
            lines[line_row.advance_id].append(_line(line_row))
        applications: dict[int, list[Application]] = defaultdict(list)
        for app in self.conn.execute(_APPLICATIONS_OF, {**self.mine, "b_keys": keys}):
            applications[app.advance_id].append(_application(app))
        return [_advance(row, lines[row.id], applications[row.id]) for row in rows]

    @staticmethod
    def _filtered(filters: Filters) -> ColumnElement[bool]:
        condition = _MINE
        c = _ADVANCES.c
        if filters.customer_id:
            condition &= c.customer_id == bindparam("b_customer_id")
        if filters.state:
            condition &= c.state == bindparam("b_state")
        if filters.advance_number:
            condition &= c.advance_number == bindparam("b_advance_number")
        if filters.reference_number:
            condition &= c.reference_number == bindparam("b_reference_number")
        if filters.payment_date_from is not None:
            condition &= c.payment_date >= bindparam("b_from", type_=Date())
        if filters.payment_date_to is not None:
            condition &= c.payment_date <= bindparam("b_to", type_=Date())
        return condition

    def _filter_params(self, filters: Filters) -> dict[str, Any]:
        return {
            **self.mine, "b_customer_id": filters.customer_id, "b_state": filters.state,
            "b_advance_number": filters.advance_number,
            "b_reference_number": filters.reference_number,
            "b_from": filters.payment_date_from, "b_to": filters.payment_date_to,
        }  # fmt: skip

    def key_of_number(self, advance_number: str) -> int | None:
        """The key of the advance with this number (unique per tenant)."""
        found = self.conn.execute(_KEY_OF_NUMBER, {**self.mine, "b_number": advance_number})
        return found.scalar_one_or_none()

    def page_keys(self, filters: Filters, after: int, limit: int) -> list[int]:
        """Keys after `after`, in order: an index range scan however deep the page."""
        query = (
            select(_ADVANCES.c.id)
            .where(self._filtered(filters) & (_ADVANCES.c.id > bindparam("b_after")))
            .order_by(_ADVANCES.c.id)
            .limit(limit)
        )
        params = {**self._filter_params(filters), "b_after": after}
        return list(self.conn.execute(query, params).scalars())

    def many(self, keys: list[int]) -> list[Advance]:
        if not keys:
            return []
        return self._assemble(list(self.conn.execute(_MANY, {**self.mine, "b_keys": keys})))

    def count(self, filters: Filters) -> int:
        query = select(func.count()).select_from(_ADVANCES).where(self._filtered(filters))
        return self.conn.execute(query, self._filter_params(filters)).scalar_one()

    def delete(self, advance: Advance) -> None:
        """Deletes the advance; its lines and applications go with it (ON DELETE CASCADE)."""
        self.conn.execute(_DELETE, {**self.mine, "b_key": advance.key})
