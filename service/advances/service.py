"""Advance use cases: each one transaction, committed only when it succeeds."""

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from service.advances import domain
from service.advances.domain import Advance, AdvanceFields, Filters
from service.advances.repository import AdvanceRepository, NumberTaken, Refused
from service.auth.keys import Principal, Tenant
from service.counters.domain import AdvanceRequest
from service.counters.service import Counters
from service.db.uow import UnitOfWork
from service.entities.settings import EntitySettings
from service.entities.store import load_settings
from service.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    ServiceError,
    TransientConflict,
)
from service.memory import Memory
from service.pagination import PageTokens, invalid_page_token, page_size

# Entities whose settings a process remembers (creates): a few MB at most.
MAX_REMEMBERED = 10_000
# The reason on the counter's audit row when a supplied number moves it.
SUPPLIED_NUMBER = "supplied advance number"
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


def counter_behind(advance_number: str) -> FailedPrecondition:
    return FailedPrecondition(
        "ADVANCE_COUNTER_BEHIND",
        f"the AR advance counter issued {advance_number!r}, which an existing advance "
        "already has: advance the COUNTER_TYPE_AR_ADVANCE counter past the migrated numbers",
        metadata={"advance_number": advance_number},
    )


# A transition of the domain, given the advance, the entity's settings and the time.
Transition = Callable[[Advance, EntitySettings, datetime], Advance]


@dataclass(frozen=True)
class NewAdvance:
    """One advance to create: parsed fields, supplied number ("" for none), state."""

    fields: AdvanceFields
    advance_number: str
    state: str
    validate_only: bool = False


class _Undone(Exception):
    """Raised inside a savepoint to undo a create that was only validated."""

    def __init__(self, advance: Advance) -> None:
        self.advance = advance


class _InTurn(Exception):
    """Raised when a batch can't be written together: it is undone and created in turn."""


class Advances:
    """The advances' use cases; numbers come from the counters' service."""

    def __init__(self, uow: UnitOfWork, tokens: PageTokens, counters: Counters) -> None:
        self.uow = uow
        self.tokens = tokens
        self.counters = counters
        # Each entity's settings as last read: creates check them unchanged as they write.
        self._settings: Memory[str, EntitySettings] = Memory(MAX_REMEMBERED)

    def create(
        self,
        principal: Principal,
        fields: AdvanceFields,
        advance_number: str,
        state: str,
        validate_only: bool = False,
    ) -> Advance:
        """Creates an advance from fields that have passed parsing. A POSTED one is
        numbered from the AR advance counter (in this transaction, so a failed create
        burns none) unless one is supplied; a DRAFT is numbered when submitted. A supplied
        number written in the counter's format and above it advances the counter to it.
        With `validate_only`, all of that is done in a savepoint and undone."""
        [outcome] = self.create_many(
            principal, [NewAdvance(fields, advance_number, state, validate_only)]
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def create_many(
        self, principal: Principal, items: list["NewAdvance | Exception"]
    ) -> list[Advance | Exception]:
        """Creates the items in one transaction, in request order: an item that fails (or
        only validates) leaves nothing, and the others go on. An Exception among `items`
        (it failed parsing) is its own outcome.

        On PostgreSQL, items without a supplied number, none only validated, are written
        in one statement with their numbers (_create_alone). Otherwise, or where that
        statement refuses, they are written together, in a few statements whatever their
        number. Where that cannot give the outcome creating them in turn would (an item
        only validates; a legacy number in the counter's format follows an item still to
        be numbered; the database refuses a write, the counter a move), it is undone and
        they are created in turn, each in a savepoint of its own."""

        def create_together(conn: Connection) -> list[Advance | Exception]:
            settings = load_settings(conn, principal.tenant.entity_id)  # once for them all
            return self._create_together(conn, principal, items, settings)

        def create_in_turn(conn: Connection) -> list[Advance | Exception]:
            settings = load_settings(conn, principal.tenant.entity_id)
            return self._create_in_turn(conn, principal, items, settings)

        made = self._create_alone(principal, items)
        if made is not None:
            return made
        if not any(isinstance(item, NewAdvance) and item.validate_only for item in items):
            with suppress(_InTurn):
                return self.uow.undoable(create_together)
        return self.uow.run(create_in_turn)

    def _create_alone(
        self, principal: Principal, items: list["NewAdvance | Exception"]
    ) -> list[Advance | Exception] | None:
        """The common creates (DRAFT, or numbered by a counter that never resets; none
        with a supplied number or only validated) in one round trip on PostgreSQL: the
        advances, their lines and their numbers with the numbers' audit row in one
        statement, atomic by itself (no BEGIN or COMMIT; the counter's row held for that
        one round trip), checked against the entity's settings as last read, which the
        statement holds unchanged. None, with nothing written, where that can't give the
        outcomes (the settings changed or refuse an advance; the counter is new, resets,
        has date tokens, is missing or exhausted; a number is taken): the general path
        decides, in a transaction, with the settings read there."""
        new_items = [item for item in items if isinstance(item, NewAdvance)]
        if (
            not new_items
            or not self.uow.statements_commit_alone
            or any(item.advance_number or item.validate_only for item in new_items)
        ):
            return None
        now = _now()
        count = sum(item.state != domain.DRAFT for item in new_items)
        numbering = None
        if count:
            numbering = self.counters.issue_within(principal, ADVANCE_COUNTER, count, now)
            if numbering is None:  # the counter refused lately
                return None
        tenant = principal.tenant
        settings = self._settings.get(tenant.entity_id)
        if settings is None:
            settings = self.uow.read(lambda conn: load_settings(conn, tenant.entity_id))
            self._settings.put(tenant.entity_id, settings)
        try:
            new = [
                domain.created(item.fields, None, item.state, settings, principal.key_id, now)
                for item in new_items
            ]
        except ServiceError:
            return None  # decided again with the settings read in its transaction

        def insert(conn: Connection) -> list[Advance] | Refused:
            return AdvanceRepository(conn, tenant).insert_alone(new, settings, numbering)

        try:
            # In a unit (an idempotent call), in a savepoint: a refused statement leaves
            # the unit usable for the general path.
            made = self.uow.statement(insert, undoable=True)
        except NumberTaken:
            return None
        if made is Refused.SETTINGS_CHANGED:
            self._settings.forget(tenant.entity_id)
        elif made is Refused.NOT_NUMBERED:
            self.counters.not_issued_within(principal, ADVANCE_COUNTER)
        if isinstance(made, Refused):
            return None
        if count:
            self.counters.issued_within(ADVANCE_COUNTER, count)
        written = iter(made)
        return [item if isinstance(item, Exception) else next(written) for item in items]

    def _create_together(
        self,
        conn: Connection,
        principal: Principal,
        items: list["NewAdvance | Exception"],
        settings: EntitySettings,
    ) -> list[Advance | Exception]:
        """The items' outcomes as _create_in_turn would give them; _InTurn where it can't."""
        outcomes: dict[int, Advance | Exception] = {}
        new: dict[int, Advance] = {}  # by index, in request order
        now = _now()
        for index, item in enumerate(items):
            if isinstance(item, Exception):
                outcomes[index] = item
                continue
            try:
                new[index] = domain.created(
                    item.fields, item.advance_number or None, item.state, settings,
                    principal.key_id, now,
                )  # fmt: skip
            except ServiceError as error:
                outcomes[index] = error
        advances = AdvanceRepository(conn, principal.tenant)
        taken = advances.numbers_taken(
            sorted({a.advance_number for a in new.values() if a.advance_number})
        )
        for index, advance in list(new.items()):
            if advance.advance_number in taken:  # by another advance, or an earlier item
                outcomes[index] = number_exists(advance.advance_number)
                del new[index]
            elif advance.advance_number:
                taken.add(advance.advance_number)
        try:
            written = list(new.values())
            made = advances.insert_many(written, self._numbers(principal, written))
        except TransientConflict:
            raise  # the unit of work runs the whole call again
        except (ServiceError, NumberTaken):
            raise _InTurn from None  # in turn, only the items concerned fail
        outcomes |= zip(new, made, strict=True)
        return [outcomes[index] for index in range(len(items))]

    def _numbers(self, principal: Principal, advances: list[Advance]) -> dict[int, str]:
        """Moves the AR advance counter past the legacy numbers among `advances` written
        in its format, then issues one number for each POSTED advance without one: the
        numbers by position. _InTurn when such a legacy number follows an advance to be
        numbered (created in turn, it would move the counter between their issues)."""
        legacy = [at for at, a in enumerate(advances) if a.advance_number]
        to_number = [
            at for at, a in enumerate(advances) if not a.advance_number and a.state != domain.DRAFT
        ]
        read = self.counters.read_supplied(
            principal.tenant, ADVANCE_COUNTER, [str(advances[at].advance_number) for at in legacy]
        ) if legacy else []  # fmt: skip
        moves = [(at, r) for at, r in zip(legacy, read, strict=True) if r is not None]
        if moves and to_number and moves[-1][0] > to_number[0]:
            raise _InTurn
        requests = [
            AdvanceRequest(ADVANCE_COUNTER, value, period=period, reason=SUPPLIED_NUMBER)
            for _, (period, value) in moves
        ]
        if requests and any(
            isinstance(outcome, Exception)
            for outcome in self.counters.advance_many(principal, requests)
        ):
            raise _InTurn
        if not to_number:
            return {}
        # Last before the insert: the counter's row stays locked from here to the commit.
        issued = self.counters.issue_if_any(principal, ADVANCE_COUNTER, len(to_number))
        return {} if issued is None else dict(zip(to_number, issued.numbers, strict=True))

    def _create_in_turn(
        self,
        conn: Connection,
        principal: Principal,
        items: list["NewAdvance | Exception"],
        settings: EntitySettings,
    ) -> list[Advance | Exception]:
        outcomes: list[Advance | Exception] = []
        for item in items:
            if isinstance(item, Exception):
                outcomes.append(item)
                continue
            try:
                with self.uow.savepoint():
                    made = self._create(conn, principal, item, settings)
                    if item.validate_only:
                        raise _Undone(made)
                outcomes.append(made)
            except _Undone as undone:
                outcomes.append(undone.advance)
            except TransientConflict:
                raise  # the unit of work runs the whole call again
            except ServiceError as error:
                outcomes.append(error)
        return outcomes

    def _create(
        self,
        conn: Connection,
        principal: Principal,
        item: "NewAdvance",
        settings: EntitySettings,
    ) -> Advance:
        """One advance: a supplied number checked and moving the counter, or a POSTED one
        numbered from the counter (whose row stays locked from then to the commit)."""
        tenant, number = principal.tenant, item.advance_number
        new = domain.created(
            item.fields, number or None, item.state, settings, principal.key_id, _now()
        )
        advances = AdvanceRepository(conn, tenant)
        issued: dict[int, str] = {}
        if number:
            if advances.numbers_taken([number]):
                raise number_exists(number)
            self.counters.advance_to_supplied(principal, ADVANCE_COUNTER, number, SUPPLIED_NUMBER)
        elif new.state != domain.DRAFT:
            issue = self.counters.issue_if_any(principal, ADVANCE_COUNTER)
            issued = {} if issue is None else {0: issue.numbers[0]}
        try:
            [made] = advances.insert_many([new], issued)
        except NumberTaken:
            if number:  # a concurrent create took it since the check
                raise number_exists(number) from None
            raise counter_behind(issued[0]) from None
        return made

    def _number(self, principal: Principal, advances: AdvanceRepository, key: int) -> str | None:
        """Numbers a submitted advance from the AR advance counter, if the entity has one.
        Called last in its transaction: the counter's row is locked from here to the
        commit, so concurrent callers of the entity queue only for this short tail."""
        issued = self.counters.issue_if_any(principal, ADVANCE_COUNTER)
        if issued is None:
            return None
        [number] = issued.numbers
        try:
            advances.set_number(key, number)
        except NumberTaken:
            raise counter_behind(number) from None
        return number

    def get_by_number(self, tenant: Tenant, advance_number: str) -> Advance:
        def get(conn: Connection) -> Advance | None:
            advances = AdvanceRepository(conn, tenant)
            key = advances.key_of_number(advance_number)
            return None if key is None else advances.get(key)

        advance = self.uow.run(get, read_only=True)
        if advance is None:
            raise NotFound(
                "ADVANCE_NOT_FOUND",
                f"no advance with number {advance_number!r}",
                metadata={"advance_number": advance_number},
            )
        return advance

    def get(self, tenant: Tenant, key: int) -> Advance:
        advance = self.uow.run(
            lambda conn: AdvanceRepository(conn, tenant).get(key), read_only=True
        )
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
        after, counted = 0, None
        if position is not None:
            if (
                len(position) != 2 + len(filters.written())
                or not all(type(n) is int for n in (position[0], position[-1]))  # not bool
                or not 0 <= position[0] <= domain.MAX_KEY
                or not 0 <= position[-1] <= domain.MAX_KEY
                or position[1:-1] != filters.written()
            ):
                raise invalid_page_token()
            after, counted = position[0], position[-1]

        def page_of(conn: Connection) -> tuple[list[int], list[Any], bool, int]:
            advances = AdvanceRepository(conn, tenant)
            keys = advances.page_keys(filters, after, size + 1)
            page, more = keys[:size], len(keys) > size
            rendered: list[Any] = []
            if render is not None:
                rendered = _render_within_budget(advances, page, render)
                if len(rendered) < len(page):
                    page, more = page[: len(rendered)], True
            total = advances.count(filters) if counted is None else counted
            return page, rendered, more, total

        page, rendered, more, total = self.uow.run(page_of, read_only=True)
        token = (
            self.tokens.encode(PAGE_KIND, tenant, [page[-1], *filters.written(), total])
            if more
            else ""
        )
        return AdvancePage(page, rendered, token, total)

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
        return self._change(
            principal,
            key,
            lambda advance, settings, now: domain.updated(
                advance, patch, names, advance_number, settings, principal.key_id, now
            ),
            etag,
        )

    def delete(self, principal: Principal, key: int, etag: str) -> None:
        tenant = principal.tenant

        def delete(conn: Connection) -> None:
            settings = load_settings(conn, tenant.entity_id)
            advance = _locked(conn, tenant, key, etag)
            domain.check_changeable(advance, settings, "deleted")
            AdvanceRepository(conn, tenant).delete(advance)

        self.uow.run(delete)

    def submit(self, principal: Principal, key: int) -> Advance:
        """DRAFT -> POSTED, numbered now from the AR advance counter unless it has a number
        (supplied, or given by the first version, which numbered drafts)."""
        return self._change(
            principal,
            key,
            lambda advance, settings, now: domain.submitted(
                advance, settings, principal.key_id, now
            ),
            then=lambda advances, after: (
                None if after.advance_number else self._number(principal, advances, key)
            ),
        )

    def reverse(self, principal: Principal, key: int, reversed_date: date, memo: str) -> Advance:
        return self._change(
            principal,
            key,
            lambda advance, settings, now: domain.reversed_on(
                advance, reversed_date, memo, settings, principal.key_id, now
            ),
        )

    def apply(
        self, principal: Principal, key: int, invoice_number: str, amount: int, applied_date: date
    ) -> Advance:
        return self._change(
            principal,
            key,
            lambda advance, settings, now: domain.applied(
                advance, invoice_number, amount, applied_date, settings, principal.key_id, now
            ),
        )

    def unapply(
        self, principal: Principal, key: int, invoice_number: str, application_key: int = 0
    ) -> Advance:
        return self._change(
            principal,
            key,
            lambda advance, settings, now: domain.unapplied(
                advance, invoice_number, application_key, settings, principal.key_id, now
            ),
        )

    def _change(
        self,
        principal: Principal,
        key: int,
        transition: Transition,
        etag: str = "",
        then: Callable[[AdvanceRepository, Advance], object] | None = None,
    ) -> Advance:
        """Locks the advance, lets the pure `transition` decide what it becomes, saves
        that (and does `then` with it, in the same transaction), and returns it as stored."""
        tenant = principal.tenant

        def change(conn: Connection) -> Advance:
            settings = load_settings(conn, tenant.entity_id)
            before = _locked(conn, tenant, key, etag)
            after = transition(before, settings, _now())
            advances = AdvanceRepository(conn, tenant)
            advances.save(before, after)
            if then is not None:
                then(advances, after)
            stored = advances.get(key)
            assert stored is not None
            return stored

        return self.uow.run(change)


def _now() -> datetime:
    return datetime.now(UTC)


def _locked(conn: Connection, tenant: Tenant, key: int, etag: str = "") -> Advance:
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
