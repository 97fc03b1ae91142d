"""Advance use cases: each one transaction, committed only when it succeeds."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

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
from service.pagination import PageTokens, invalid_page_token, page_size

ADVANCE_COUNTER = "ar_advance"
PAGE_KIND = "advances"
# A FULL page stops before page_size once its advances, rendered, reach this many bytes
# (AIP-158 allows a short page): far under gRPC's default 4 MiB client limit.
MAX_FULL_PAGE_BYTES = 2 * 1024 * 1024
# Whole advances are read this many at a time at first, then as many as the budget left
# suggests: memory stays in proportion to the page's bytes, not to page_size x lines.
FIRST_CHUNK = 10

# The whole-advance view of an advance (a message, to the servicer) and its size in bytes.
Render = Callable[[Advance], tuple[Any, int]]


@dataclass(frozen=True)
class AdvancePage:
    keys: list[int]  # the page's keys
    rendered: list[Any]  # the FULL view of each, when a renderer was given
    next_page_token: str
    total_size: int


def _render_within_budget(
    advances: AdvanceRepository, keys: list[int], render: Render
) -> list[Any]:
    """The rendered advances of `keys`, in order, for as long as they fit in
    MAX_FULL_PAGE_BYTES (the first always)."""
    rendered: list[Any] = []
    used, start, chunk = 0, 0, FIRST_CHUNK
    while start < len(keys):
        for advance in advances.many(keys[start : start + chunk]):
            message, size = render(advance)
            if rendered and used + size > MAX_FULL_PAGE_BYTES:
                return rendered
            rendered.append(message)
            used += size
        start += chunk
        average = used / len(rendered)
        chunk = max(1, int((MAX_FULL_PAGE_BYTES - used) / average) + 1)
    return rendered


def number_exists(advance_number: str) -> AlreadyExists:
    return AlreadyExists(
        "ADVANCE_NUMBER_EXISTS",
        f"the entity already has an advance numbered {advance_number!r}",
        metadata={"advance_number": advance_number},
    )


class Advances:
    def __init__(self, uow: UnitOfWork, tokens: PageTokens) -> None:
        self.uow = uow
        self.tokens = tokens

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
        self,
        tenant: Tenant,
        filters: Filters,
        requested_size: int,
        page_token: str,
        render: Render | None = None,
    ) -> AdvancePage:
        """Keyset pages in key order. The token carries the last key and the filters it
        was made for (another filter with it is INVALID_ARGUMENT, AIP-158), and the
        total counted for the first page: later pages repeat it rather than count a
        large table again on every page.

        With `render` (the FULL view), whole advances are read and rendered until the page
        reaches MAX_FULL_PAGE_BYTES; the page then ends early (at least one advance)."""
        size = page_size(requested_size)
        position = self.tokens.decode(PAGE_KIND, tenant, page_token, list)
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
            rendered: list[Any] = []
            if render is not None:
                rendered = _render_within_budget(advances, page, render)
                if len(rendered) < len(page):
                    page, more = page[: len(rendered)], True
            if total is None:
                total = advances.count(filters)
        token = (
            self.tokens.encode(
                PAGE_KIND, tenant, [page[-1], filters.customer_id, filters.state, total]
            )
            if more
            else ""
        )
        return AdvancePage(page, rendered, token, total)

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
            advances.add_application(advance, application, principal.key_id, now)
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

    def unapply(
        self, principal: Principal, key: int, invoice_number: str, application_key: int = 0
    ) -> Advance:
        def unapply(advances: AdvanceRepository, advance: Advance, settings, now) -> None:  # type: ignore[no-untyped-def]
            chosen = domain.plan_unapply(advance, invoice_number, application_key, settings)
            advances.unapply(advance, chosen, principal.key_id, now)
            txn_paid = advance.txn_total_paid - sum(a.amount for a in chosen)
            advances.save(
                advance,
                principal.key_id,
                now,
                state=domain.state_for(txn_paid, advance.txn_total_entered),
                total_paid=advance.total_paid - sum(a.base_amount for a in chosen),
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
