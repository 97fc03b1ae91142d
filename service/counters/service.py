"""Counter use cases: each one transaction, committed only when it succeeds."""

from dataclasses import dataclass
from datetime import UTC, datetime

from service.auth.keys import Principal, Tenant
from service.counters.domain import (
    COUNTER_TYPES,
    AdvanceRequest,
    AdvanceResult,
    Counter,
    IssueResult,
    counter_exhausted,
    counter_not_found,
    in_type_order,
    new_counter_fields,
)
from service.counters.repository import CounterRepository
from service.db.uow import UnitOfWork
from service.pagination import decode_token, encode_token, invalid_page_token, page_size

_PAGE_KIND = "counters"


@dataclass(frozen=True)
class CounterPage:
    counters: list[Counter]
    next_page_token: str


class Counters:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def advance(self, principal: Principal, request: AdvanceRequest) -> AdvanceResult:
        """Raises the counter to `request.advance_to`, creating it if missing.

        `request` has passed check_advance. The clock is read only once the row is
        locked, so update times and audit times follow the order of the changes.
        """
        kind, target, key_id = request.counter_type, request.advance_to, principal.key_id
        with self.uow.transaction() as conn:
            counters = CounterRepository(conn, principal.tenant)
            counter = counters.get(kind, lock=True)
            if counter is None:
                prefix, padding = new_counter_fields(request)
                created = counters.create(kind, prefix, padding, target, datetime.now(UTC))
                if created is not None:
                    counters.record_event(kind, "create", None, target, key_id, created.create_time)
                    return AdvanceResult(created, advanced=True, created=True, previous_value=0)
                counter = counters.get(kind, lock=True)  # created concurrently: advance that
                assert counter is not None
            previous = counter.current_value
            if previous >= target:
                return AdvanceResult(
                    counter, advanced=False, created=False, previous_value=previous
                )
            counter = counters.set_value(kind, target, datetime.now(UTC))
            counters.record_event(kind, "advance", previous, target, key_id, counter.update_time)
            return AdvanceResult(counter, advanced=True, created=False, previous_value=previous)

    def get(self, tenant: Tenant, counter_type: str) -> Counter:
        with self.uow.transaction(read_only=True) as conn:
            counter = CounterRepository(conn, tenant).get(counter_type)
        if counter is None:
            raise counter_not_found(counter_type)
        return counter

    def list_page(self, tenant: Tenant, requested_size: int, page_token: str) -> CounterPage:
        """Counters in counter-type order. A tenant has at most len(COUNTER_TYPES) of
        them, so they are read whole; the token holds the last type returned."""
        size = page_size(requested_size)
        after = decode_token(_PAGE_KIND, page_token, str)
        if after is not None and after not in COUNTER_TYPES:
            raise invalid_page_token()
        with self.uow.transaction(read_only=True) as conn:
            ordered = in_type_order(CounterRepository(conn, tenant).all())
        if after is not None:
            start = COUNTER_TYPES.index(after)
            ordered = [c for c in ordered if COUNTER_TYPES.index(c.counter_type) > start]
        page = ordered[:size]
        next_token = encode_token(_PAGE_KIND, page[-1].counter_type) if len(ordered) > size else ""
        return CounterPage(page, next_token)

    def issue(self, principal: Principal, counter_type: str, count: int) -> IssueResult:
        """Issues `count` contiguous numbers; `count` has passed check_issue_count."""
        with self.uow.transaction() as conn:
            counters = CounterRepository(conn, principal.tenant)
            result = issue_from(counters, counter_type, count, principal.key_id)
        if result is None:
            raise counter_not_found(counter_type)
        return result


def issue_from(
    counters: CounterRepository, counter_type: str, count: int, key_id: int | None
) -> IssueResult | None:
    """Issues `count` numbers inside the caller's transaction, audited; None when the
    tenant has no such counter. Whoever issues (IssueNumbers, CreateAdvance) issues here."""
    counter = counters.increment(counter_type, count, datetime.now(UTC))
    if counter is None:
        existing = counters.get(counter_type)
        if existing is None:
            return None
        raise counter_exhausted(existing, count)
    first = counter.current_value - count + 1
    counters.record_event(
        counter_type, "issue", first - 1, counter.current_value, key_id, counter.update_time
    )
    return IssueResult(counter, first, counter.current_value)
