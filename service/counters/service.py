"""Counter use cases: each one transaction, committed only when it succeeds."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import methodcaller
from typing import Protocol

from sqlalchemy import Connection

from service.auth.keys import Principal, Tenant
from service.counters.domain import (
    COUNTER_TYPES,
    AdvanceRequest,
    AdvanceResult,
    Counter,
    CounterChange,
    IssueResult,
    advanced,
    change_of,
    counter_exhausted,
    counter_not_found,
    in_type_order,
)
from service.counters.repository import CounterRepository
from service.db.failures import RefusedByDatabase
from service.db.uow import UnitOfWork
from service.errors import ServiceError, TransientConflict
from service.pagination import PageTokens, invalid_page_token, page_size

_PAGE_KIND = "counters"


@dataclass(frozen=True)
class CounterPage:
    counters: list[Counter]
    next_page_token: str


class Metrics(Protocol):
    """Where committed effects are counted (service/observability.py)."""

    def advanced(self, counter_type: str) -> None: ...

    def issued(self, counter_type: str, count: int) -> None: ...


class Counters:
    """The counters' use cases, and the API other domains take numbers through."""

    def __init__(self, uow: UnitOfWork, tokens: PageTokens, metrics: Metrics | None = None) -> None:
        self.uow = uow
        self.tokens = tokens
        self.metrics = metrics

    def advance(self, principal: Principal, request: AdvanceRequest) -> AdvanceResult:
        """Raises the counter to `request.advance_to`, creating it if missing.
        `request` has passed check_advance."""
        [outcome] = self.advance_many(principal, [request])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def advance_many(
        self, principal: Principal, requests: list[AdvanceRequest]
    ) -> list[AdvanceResult | Exception]:
        """Each request applied in turn, in one transaction of a few statements whatever
        their number: the counters are locked at once, every outcome is decided in
        memory, then the changes and their audit rows are written together. A request
        that fails (a missing counter without a prefix) gets its error and changes
        nothing; the others still apply. Requests have passed check_advance.

        Should the database refuse those writes for no rule of ours (a constraint, a
        trigger), they are undone and the requests applied one at a time, each in its
        own savepoint, so that only the request it refuses fails.

        The clock is read once the rows are locked, so update times and audit times
        follow the order of the changes.
        """
        if not requests:
            return []
        return self.uow.run(lambda conn: self._advance_many(conn, principal, requests))

    def _advance_many(
        self, conn: Connection, principal: Principal, requests: list[AdvanceRequest]
    ) -> list[AdvanceResult | Exception]:
        key_id = principal.key_id
        counters = CounterRepository(conn, principal.tenant)
        stored = counters.lock({request.counter_type for request in requests})
        now = datetime.now(UTC)
        if len(requests) == 1:  # alone, its failure is the call's: no savepoint needed
            outcomes = _apply(counters, stored, requests, now, key_id)[0]
        else:
            outcomes = self._apply_in_savepoints(counters, stored, requests, now, key_id)
        for outcome in outcomes:
            if isinstance(outcome, AdvanceResult) and outcome.advanced:
                self._count(methodcaller("advanced", outcome.counter.counter_type))
        return outcomes

    def _apply_in_savepoints(
        self,
        counters: CounterRepository,
        stored: dict[str, Counter],
        requests: list[AdvanceRequest],
        now: datetime,
        key_id: int | None,
    ) -> list[AdvanceResult | Exception]:
        try:
            with self.uow.savepoint():
                return _apply(counters, stored, requests, now, key_id)[0]
        except RefusedByDatabase:
            pass
        outcomes: list[AdvanceResult | Exception] = []
        current = stored
        for request in requests:
            try:
                with self.uow.savepoint():
                    [outcome], current = _apply(counters, current, [request], now, key_id)
            except RefusedByDatabase as error:
                outcome = error
            outcomes.append(outcome)
        return outcomes

    def get(self, tenant: Tenant, counter_type: str) -> Counter:
        counter = self.uow.read(lambda conn: CounterRepository(conn, tenant).get(counter_type))
        if counter is None:
            raise counter_not_found(counter_type)
        return counter

    def list_page(self, tenant: Tenant, requested_size: int, page_token: str) -> CounterPage:
        """Counters in counter-type order. A tenant has at most len(COUNTER_TYPES) of
        them, so they are read whole; the token holds the last type returned."""
        size = page_size(requested_size)
        after = self.tokens.decode(_PAGE_KIND, tenant, page_token, str)
        if after is not None and after not in COUNTER_TYPES:
            raise invalid_page_token()
        stored = self.uow.run(lambda conn: CounterRepository(conn, tenant).all(), read_only=True)
        ordered = in_type_order(stored)
        if after is not None:
            start = COUNTER_TYPES.index(after)
            ordered = [c for c in ordered if COUNTER_TYPES.index(c.counter_type) > start]
        page = ordered[:size]
        next_token = (
            self.tokens.encode(_PAGE_KIND, tenant, page[-1].counter_type)
            if len(ordered) > size
            else ""
        )
        return CounterPage(page, next_token)

    def issue(self, principal: Principal, counter_type: str, count: int) -> IssueResult:
        """Issues `count` contiguous numbers; `count` has passed check_issue_count."""
        result = self.issue_if_any(principal, counter_type, count)
        if result is None:
            raise counter_not_found(counter_type)
        return result

    def issue_if_any(
        self, principal: Principal, counter_type: str, count: int = 1
    ) -> IssueResult | None:
        """Issues `count` numbers, audited; None when the tenant has no such counter. Run
        inside another use case's unit of work (CreateAdvance numbering an advance), it
        issues in that transaction: should that fail, no number is used up."""

        def issue(conn: Connection) -> IssueResult | None:
            counters = CounterRepository(conn, principal.tenant)
            counter = counters.issue(counter_type, count, datetime.now(UTC), principal.key_id)
            if counter is None:
                existing = counters.get(counter_type)
                if existing is None:
                    return None
                raise counter_exhausted(existing, count)
            self._count(methodcaller("issued", counter_type, count))
            first = counter.current_value - count + 1
            return IssueResult(counter, first, counter.current_value)

        return self.uow.run(issue)

    def _count(self, count: Callable[[Metrics], None]) -> None:
        """Counts an effect once its transaction has committed: never for one rolled back
        or run again."""
        if self.metrics is not None:
            metrics = self.metrics
            self.uow.after_commit(lambda: count(metrics))


def created_concurrently() -> TransientConflict:
    return TransientConflict(
        "TRANSIENT_CONFLICT",
        "another call created the same counter at the same moment; it was retried and "
        "still conflicts: try again",
    )


def _apply(
    counters: CounterRepository,
    stored: dict[str, Counter],
    requests: list[AdvanceRequest],
    now: datetime,
    key_id: int | None,
) -> tuple[list[AdvanceResult | Exception], dict[str, Counter]]:
    """The requests decided in memory against the `stored` (locked) counters, then
    written; their outcomes, and the counters as they now stand."""
    current = dict(stored)
    outcomes: list[AdvanceResult | Exception] = []
    changes: list[CounterChange] = []
    for request in requests:
        try:
            result = advanced(current.get(request.counter_type), request, now)
        except ServiceError as error:
            outcomes.append(error)
            continue
        outcomes.append(result)
        if result.advanced:
            current[request.counter_type] = result.counter
            changes.append(change_of(result, key_id))
    if not counters.create_all([c for kind, c in current.items() if kind not in stored]):
        raise created_concurrently()  # retried: the next attempt locks that row
    counters.update_all([c for kind, c in current.items() if stored.get(kind, c) != c])
    counters.record_changes(changes)
    return outcomes, current
