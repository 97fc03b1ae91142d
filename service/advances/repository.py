"""Advances, their lines and applications in the database. Every method runs inside
the caller's transaction; every query is limited to the caller's tenant."""

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.advances.domain import (
    Advance,
    AdvanceFields,
    Application,
    Line,
    LineFields,
    Priced,
    Ref,
)
from service.auth.keys import Tenant
from service.db.ids import new_id
from service.db.models import Advance as AdvanceRow
from service.db.models import AdvanceApplication as ApplicationRow
from service.db.models import AdvanceLine as LineRow
from service.values import format_rate


class NumberTaken(Exception):
    """The advance number is in use: the unique constraint caught a concurrent create."""


@contextmanager
def _number_unique(advance_number: str | None) -> Iterator[None]:
    """The unique constraint on advance numbers, violated, as NumberTaken."""
    try:
        yield
    except IntegrityError as error:
        if "advance_number" in str(error.orig):
            raise NumberTaken(advance_number) from error
        raise


@dataclass(frozen=True)
class Filters:
    customer_id: str = ""
    state: str = ""


def _header_values(f: AdvanceFields, priced: Priced) -> dict[str, Any]:
    return {
        "customer_id": f.customer_id,
        "customer_name": f.customer_name,
        "reference_number": f.reference_number,
        "description": f.description,
        "payment_date": f.payment_date,
        "receipt_date": f.receipt_date,
        "payment_method": f.payment_method,
        "financial_entity_id": f.financial_entity_id,
        "txn_currency": f.txn_currency,
        "exchange_rate": "" if f.exchange_rate is None else format_rate(f.exchange_rate),
        "exchange_rate_date": f.exchange_rate_date,
        "exchange_rate_type_id": f.exchange_rate_type_id,
        "advance_summary_id": f.advance_summary_id,
        "gl_account_id": f.gl_account_id,
        "undeposited_gl_account_number": f.undeposited_gl_account_number,
        "attachment_id": f.attachment_id,
        "total_entered": priced.total_entered,
        "txn_total_entered": priced.txn_total_entered,
    }


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


def _in_date_order(applications: list[Application]) -> tuple[Application, ...]:
    return tuple(sorted(applications, key=lambda a: (a.applied_date, a.apply_time, a.key)))


def _advance(row: Row, lines: list[Line], applications: list[Application]) -> Advance:
    ordered = tuple(sorted(lines, key=lambda line: line.line_number))
    return Advance(
        key=row.id,
        advance_number=row.advance_number,
        state=row.state,
        fields=_fields(row, tuple(line.fields for line in ordered)),
        base_currency=row.base_currency,
        lines=ordered,
        applications=_in_date_order([a for a in applications if a.unapply_time is None]),
        unapplied=_in_date_order([a for a in applications if a.unapply_time is not None]),
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


# The statements of the create and read paths, built once (building them per call cost more
# than running them).
_ADVANCES = cast(Table, AdvanceRow.__table__)
_LINES = cast(Table, LineRow.__table__)
_APPLICATIONS = cast(Table, ApplicationRow.__table__)
_MINE = (_ADVANCES.c.entity_id == bindparam("b_entity_id")) & (
    _ADVANCES.c.mode == bindparam("b_mode")
)
_INSERT = insert(_ADVANCES).returning(_ADVANCES.c.id)
_INSERT_LINES = insert(_LINES)
_SET_NUMBER = (
    update(_ADVANCES)
    .where(_MINE & (_ADVANCES.c.id == bindparam("b_key")))
    .values(advance_number=bindparam("b_number"))
)
_NUMBER_TAKEN = (
    select(_ADVANCES.c.id).where(_MINE & (_ADVANCES.c.advance_number == bindparam("b_number")))
).limit(1)
_GET = select(_ADVANCES).where(_MINE & (_ADVANCES.c.id == bindparam("b_key")))
_GET_FOR_UPDATE = _GET.with_for_update()  # SQLite: BEGIN IMMEDIATE already serialises
_MANY = (
    select(_ADVANCES)
    .where(_MINE & _ADVANCES.c.id.in_(bindparam("b_keys", expanding=True)))
    .order_by(_ADVANCES.c.id)
)
_LINES_OF = select(_LINES).where(_LINES.c.advance_id.in_(bindparam("b_keys", expanding=True)))
_APPLICATIONS_OF = select(_APPLICATIONS).where(
    (_APPLICATIONS.c.entity_id == bindparam("b_entity_id"))
    & (_APPLICATIONS.c.mode == bindparam("b_mode"))
    & _APPLICATIONS.c.advance_id.in_(bindparam("b_keys", expanding=True))
)
_INSERT_APPLICATION = insert(_APPLICATIONS)
_UNAPPLY = (
    update(_APPLICATIONS)
    .where(
        (_APPLICATIONS.c.entity_id == bindparam("b_entity_id"))
        & (_APPLICATIONS.c.mode == bindparam("b_mode"))
        & (_APPLICATIONS.c.advance_id == bindparam("b_advance"))
        & _APPLICATIONS.c.id.in_(bindparam("b_keys", expanding=True))
        & _APPLICATIONS.c.unapply_time.is_(None)
    )
    .values(unapply_time=bindparam("b_now"), unapplied_by=bindparam("b_key_id"))
)


class AdvanceRepository:
    def __init__(self, conn: Connection, tenant: Tenant) -> None:
        self.conn = conn
        self.tenant = tenant
        self.mine = {"b_entity_id": tenant.entity_id, "b_mode": tenant.mode}

    def _mine(self):  # type: ignore[no-untyped-def]
        return (AdvanceRow.entity_id == self.tenant.entity_id) & (
            AdvanceRow.mode == self.tenant.mode
        )

    def number_taken(self, advance_number: str) -> bool:
        found = self.conn.execute(_NUMBER_TAKEN, {**self.mine, "b_number": advance_number})
        return found.first() is not None

    def insert(
        self,
        fields: AdvanceFields,
        priced: Priced,
        advance_number: str | None,
        state: str,
        base_currency: str,
        key_id: int,
        now: datetime,
    ) -> int:
        """Inserts the advance and its lines; NumberTaken if a concurrent create took
        `advance_number` first (the unique constraint is the final word on it)."""
        values = {
            "id": new_id(),
            "entity_id": self.tenant.entity_id,
            "mode": self.tenant.mode,
            "advance_number": advance_number,
            "state": state,
            "base_currency": base_currency,
            "total_paid": 0,
            "txn_total_paid": 0,
            "ever_applied": False,
            "reversal_memo": "",
            "version": 1,
            "create_time": now,
            "update_time": now,
            "created_by": key_id,
            "modified_by": key_id,
            **_header_values(fields, priced),
        }
        with _number_unique(advance_number):
            key = self.conn.execute(_INSERT, values).scalar_one()
        self._insert_lines(key, fields.items, priced)
        return key

    def set_number(self, key: int, advance_number: str) -> None:
        """Numbers a new advance; NumberTaken if another advance has that number."""
        with _number_unique(advance_number):
            self.conn.execute(_SET_NUMBER, {**self.mine, "b_key": key, "b_number": advance_number})

    def _insert_lines(self, key: int, items: tuple[LineFields, ...], priced: Priced) -> None:
        self.conn.execute(
            _INSERT_LINES,
            [
                {
                    "id": new_id(),
                    "advance_id": key,
                    "line_number": number,
                    "gl_account_id": item.gl_account.id,
                    "gl_account_name": item.gl_account.name,
                    "account_label_id": item.account_label.id,
                    "account_label_name": item.account_label.name,
                    "txn_amount": item.txn_amount,
                    "base_amount": base,
                    "memo": item.memo,
                    "dimensions": {
                        name: {"id": ref.id, "name": ref.name}
                        for name, ref in item.dimensions.items()
                    },
                }
                for number, (item, base) in enumerate(
                    zip(items, priced.base_amounts, strict=True), start=1
                )
            ],
        )

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
        for line_row in self.conn.execute(_LINES_OF, {"b_keys": keys}):
            lines[line_row.advance_id].append(_line(line_row))
        applications: dict[int, list[Application]] = defaultdict(list)
        for app in self.conn.execute(_APPLICATIONS_OF, {**self.mine, "b_keys": keys}):
            applications[app.advance_id].append(_application(app))
        return [_advance(row, lines[row.id], applications[row.id]) for row in rows]

    def _filtered(self, filters: Filters):  # type: ignore[no-untyped-def]
        condition = self._mine()
        if filters.customer_id:
            condition &= AdvanceRow.customer_id == filters.customer_id
        if filters.state:
            condition &= AdvanceRow.state == filters.state
        return condition

    def page_keys(self, filters: Filters, after: int, limit: int) -> list[int]:
        """Keys after `after`, in order: an index range scan however deep the page."""
        query = (
            select(AdvanceRow.id)
            .where(self._filtered(filters) & (AdvanceRow.id > after))
            .order_by(AdvanceRow.id)
            .limit(limit)
        )
        return list(self.conn.execute(query).scalars())

    def many(self, keys: list[int]) -> list[Advance]:
        if not keys:
            return []
        return self._assemble(list(self.conn.execute(_MANY, {**self.mine, "b_keys": keys})))

    def count(self, filters: Filters) -> int:
        query = select(func.count()).select_from(AdvanceRow).where(self._filtered(filters))
        return self.conn.execute(query).scalar_one()

    def save(self, advance: Advance, key_id: int, now: datetime, **changes: Any) -> None:
        """Writes `changes` to the advance's row, with a new version and modifier."""
        self.conn.execute(
            update(AdvanceRow)
            .where(self._mine() & (AdvanceRow.id == advance.key))
            .values(version=advance.version + 1, update_time=now, modified_by=key_id, **changes)
        )

    def save_fields(
        self, advance: Advance, fields: AdvanceFields, priced: Priced, key_id: int, now: datetime
    ) -> None:
        self.save(advance, key_id, now, **_header_values(fields, priced))
        if fields.items != advance.fields.items or priced.base_amounts != tuple(
            line.base_amount for line in advance.lines
        ):
            self.conn.execute(delete(LineRow).where(LineRow.advance_id == advance.key))
            self._insert_lines(advance.key, fields.items, priced)

    def delete(self, advance: Advance) -> None:
        """Deletes the advance; its lines go with it (ON DELETE CASCADE)."""
        self.conn.execute(delete(AdvanceRow).where(self._mine() & (AdvanceRow.id == advance.key)))

    def add_application(
        self, advance: Advance, application: Application, key_id: int, now: datetime
    ) -> None:
        """Records an application of its own, beside any earlier one to the same invoice."""
        self.conn.execute(
            _INSERT_APPLICATION,
            {
                "id": new_id(),
                "entity_id": self.tenant.entity_id,
                "mode": self.tenant.mode,
                "advance_id": advance.key,
                "invoice_number": application.invoice_number,
                "amount": application.amount,
                "base_amount": application.base_amount,
                "applied_date": application.applied_date,
                "create_time": now,
                "applied_by": key_id,
            },
        )

    def unapply(
        self,
        advance: Advance,
        applications: tuple[Application, ...],
        key_id: int,
        now: datetime,
    ) -> None:
        """Marks the applications unapplied; they stay, as the advance's history."""
        self.conn.execute(
            _UNAPPLY,
            {
                **self.mine,
                "b_advance": advance.key,
                "b_keys": [a.key for a in applications],
                "b_now": now,
                "b_key_id": key_id,
            },
        )
