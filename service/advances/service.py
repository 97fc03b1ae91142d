"""Advance use cases: each one transaction, committed only when it succeeds."""

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from service.advances import domain
from service.advances.domain import Advance, AdvanceFields
from service.advances.repository import AdvanceRepository, Filters, NumberTaken
from service.auth.keys import Principal, Tenant
from service.counters.repository import CounterRepository
from service.counters.service import issue_from
from service.db.uow import UnitOfWork
from service.entities.store import load_settings
from service.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Violations,
)
from service.pagination import decode_token, encode_token, invalid_page_token, page_size

ADVANCE_COUNTER = "ar_advance"
PAGE_KIND = "advances"


@dataclass(frozen=True)
class AdvancePage:
    advances: list[Advance]
    keys: list[int]  # the page's keys; `advances` is empty unless the full view was asked for
    next_page_token: str
    total_size: int


def number_exists(advance_number: str) -> AlreadyExists:
    return AlreadyExists(
        "ADVANCE_NUMBER_EXISTS",
        f"the entity already has an advance numbered {advance_number!r}",
        metadata={"advance_number": advance_number},
    )


class Advances:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def create(
        self, principal: Principal, fields: AdvanceFields, advance_number: str, state: str
    ) -> Advance:
        """Creates an advance from fields that have passed parsing. Its number comes
        from the AR advance counter (in this transaction, so a failed create burns
        none) unless one is supplied."""
        tenant = principal.tenant
        with self.uow.transaction() as conn:
            settings = load_settings(conn, tenant.entity_id)
            violations = Violations()
            domain.check_fields(fields, settings, violations)
            violations.raise_if_any()
            assert fields.receipt_date is not None
            domain.check_period_open(fields.receipt_date, settings, "the receipt date")
            advances = AdvanceRepository(conn, tenant)
            now = datetime.now(UTC)
            if advance_number and advances.number_taken(advance_number):
                raise number_exists(advance_number)
            try:
                key = advances.insert(
                    fields,
                    domain.price(fields),
                    advance_number or None,
                    state,
                    settings.base_currency,
                    principal.key_id,
                    now,
                )
            except NumberTaken:  # a concurrent create took it since the check above
                raise number_exists(advance_number) from None
            created = advances.get(key)
            assert created is not None
            if advance_number:
                return created
            # Numbered last: the AR advance counter's row is locked from here to the
            # commit, so concurrent creates of the entity queue only for this short tail.
            number = self._next_number(conn, principal)
            if number is None:
                return created
            try:
                advances.set_number(key, number)
            except NumberTaken:
                raise FailedPrecondition(
                    "ADVANCE_COUNTER_BEHIND",
                    f"the AR advance counter issued {number!r}, which an existing advance "
                    "already has: advance the COUNTER_TYPE_AR_ADVANCE counter past the "
                    "migrated numbers",
                    metadata={"advance_number": number},
                ) from None
            return replace(created, advance_number=number)

    @staticmethod
    def _next_number(conn, principal: Principal) -> str | None:  # type: ignore[no-untyped-def]
        """The next number of the AR advance counter, in this transaction; None without one."""
        counters = CounterRepository(conn, principal.tenant)
        issued = issue_from(counters, ADVANCE_COUNTER, 1, principal.key_id)
        return issued.numbers[0] if issued else None

    def get(self, tenant: Tenant, key: int) -> Advance:
        with self.uow.transaction(read_only=True) as conn:
            advance = AdvanceRepository(conn, tenant).get(key)
        if advance is None:
            raise domain.advance_not_found(key)
        return advance

    def list_page(
        self, tenant: Tenant, filters: Filters, requested_size: int, page_token: str, full: bool
    ) -> AdvancePage:
        """Keyset pages in key order. The token carries the last key and the filters it
        was made for (another filter with it is INVALID_ARGUMENT, AIP-158), and the
        total counted for the first page: later pages repeat it rather than count a
        large table again on every page."""
        size = page_size(requested_size)
        position = decode_token(PAGE_KIND, page_token, list)
        after, total = 0, None
        if position is not None:
            if (
                len(position) != 4
                or not all(type(n) is int for n in (position[0], position[3]))  # not bool
                or not 0 <= position[0] <= domain.MAX_KEY
                or not 0 <= position[3] <= domain.MAX_KEY
                or position[1:3] != [filters.customer_id, filters.state]
            ):
                raise invalid_page_token()
            after, total = position[0], position[3]
        with self.uow.transaction(read_only=True) as conn:
            advances = AdvanceRepository(conn, tenant)
            keys = advances.page_keys(filters, after, size + 1)
            page, more = keys[:size], len(keys) > size
            whole = advances.many(page) if full else []
            if total is None:
                total = advances.count(filters)
        token = (
            encode_token(PAGE_KIND, [page[-1], filters.customer_id, filters.state, total])
            if more
            else ""
        )
        return AdvancePage(whole, page, token, total)

    def _locked(self, conn, tenant: Tenant, key: int, etag: str = "") -> Advance:  # type: ignore[no-untyped-def]
        advance = AdvanceRepository(conn, tenant).get(key, lock=True)
        if advance is None:
            raise domain.advance_not_found(key)
        if etag and etag != advance.etag:
            raise Aborted(
                "ETAG_MISMATCH",
                "the advance changed since that etag was read: get it again and retry",
                metadata={"key": str(key), "etag": advance.etag},
            )
        return advance

    def update(
        self,
        principal: Principal,
        key: int,
        patch: AdvanceFields,
        names: set[str],
        etag: str,
        advance_number: str = "",
    ) -> Advance:
        """Writes the attributes `names` of `patch`; replacing items re-prices them.
        `advance_number`, when sent, must be the advance's own: it is immutable."""
        tenant = principal.tenant
        with self.uow.transaction() as conn:
            settings = load_settings(conn, tenant.entity_id)
            advance = self._locked(conn, tenant, key, etag)
            domain.check_changeable(advance, settings, "updated")
            if advance_number and advance_number != (advance.advance_number or ""):
                raise InvalidArgument(
                    [
                        FieldViolation(
                            "advance.advance_number",
                            "cannot change once the advance exists",
                            "FIELD_IMMUTABLE",
                        )
                    ]
                )
            fields = domain.merge(advance.fields, patch, names)
            violations = Violations()
            domain.check_fields(fields, settings, violations, advance.base_currency)
            violations.raise_if_any()
            assert fields.receipt_date is not None
            domain.check_period_open(fields.receipt_date, settings, "the new receipt date")
            advances = AdvanceRepository(conn, tenant)
            advances.save_fields(
                advance, fields, domain.price(fields), principal.key_id, datetime.now(UTC)
            )
            updated = advances.get(key)
        assert updated is not None
        return updated

    def delete(self, principal: Principal, key: int, etag: str) -> None:
        tenant = principal.tenant
        with self.uow.transaction() as conn:
            settings = load_settings(conn, tenant.entity_id)
            advance = self._locked(conn, tenant, key, etag)
            domain.check_changeable(advance, settings, "deleted")
            AdvanceRepository(conn, tenant).delete(advance)

    def submit(self, principal: Principal, key: int) -> Advance:
        def submit(advances: AdvanceRepository, advance: Advance, settings, now) -> None:  # type: ignore[no-untyped-def]
            domain.check_submit(advance, settings)
            advances.save(advance, principal.key_id, now, state=domain.POSTED)

        return self._transition(principal, key, submit)

    def reverse(self, principal: Principal, key: int, reversed_date: date, memo: str) -> Advance:
        def reverse(advances: AdvanceRepository, advance: Advance, settings, now) -> None:  # type: ignore[no-untyped-def]
            domain.check_reverse(advance, reversed_date, settings)
            advances.save(
                advance,
                principal.key_id,
                now,
                state=domain.REVERSED,
                reversed_date=reversed_date,
                reversal_memo=memo,
            )

        return self._transition(principal, key, reverse)

    def apply(
        self, principal: Principal, key: int, invoice_number: str, amount: int, applied_date: date
    ) -> Advance:
        def apply(advances: AdvanceRepository, advance: Advance, settings, now) -> None:  # type: ignore[no-untyped-def]
            application = domain.plan_apply(advance, invoice_number, amount, applied_date, settings)
            advances.put_application(advance, application, now)
            txn_paid = advance.txn_total_paid + application.amount
            advances.save(
                advance,
                principal.key_id,
                now,
                state=domain.state_for(txn_paid, advance.txn_total_entered),
                total_paid=advance.total_paid + application.base_amount,
                txn_total_paid=txn_paid,
                ever_applied=True,
            )

        return self._transition(principal, key, apply)

    def unapply(self, principal: Principal, key: int, invoice_number: str) -> Advance:
        def unapply(advances: AdvanceRepository, advance: Advance, settings, now) -> None:  # type: ignore[no-untyped-def]
            application = domain.plan_unapply(advance, invoice_number, settings)
            advances.remove_application(advance, invoice_number)
            txn_paid = advance.txn_total_paid - application.amount
            advances.save(
                advance,
                principal.key_id,
                now,
                state=domain.state_for(txn_paid, advance.txn_total_entered),
                total_paid=advance.total_paid - application.base_amount,
                txn_total_paid=txn_paid,
            )

        return self._transition(principal, key, unapply)

    def _transition(self, principal: Principal, key: int, change) -> Advance:  # type: ignore[no-untyped-def]
        """Locks the advance, lets `change` check its rule and write, returns the result."""
        tenant = principal.tenant
        with self.uow.transaction() as conn:
            settings = load_settings(conn, tenant.entity_id)
            advance = self._locked(conn, tenant, key)
            advances = AdvanceRepository(conn, tenant)
            change(advances, advance, settings, datetime.now(UTC))
            changed = advances.get(key)
        assert changed is not None
        return changed
