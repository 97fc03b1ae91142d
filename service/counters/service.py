"""Counter use cases: each one transaction, committed only when it succeeds."""

from dataclasses import dataclass
from datetime import UTC, datetime

from service.auth.keys import Principal, Tenant
from service.counters.domain import (
    AdvanceRequest,
    AdvanceResult,
    Counter,
    IssueResult,
    counter_exhausted,
    counter_not_found,
    new_counter_fields,
)
from service.counters.repository import CounterRepository
from service.db.uow import UnitOfWork
from service.pagination import decode_token, encode_token, page_size

_PAGE_KIND = "counters"


@dataclass(frozen=True)
class CounterPage:
    counters: list[Counter]
    next_page_token: str


class Counters:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def advance(
        self, principal: Principal, request: AdvanceRequest, path: str = ""
    ) -> AdvanceResult:
        """Raises the counter to `request.advance_to`, creating it if missing.

        `request` has passed check_advance; `path` names it in errors (batch items).
        """
        now = datetime.now(UTC)
        with self.uow.transaction() as conn:
            counters = CounterRepository(conn, principal.tenant)
            kind = request.counter_type
            counter = counters.get(kind, lock=True)
            if counter is None:
                prefix, padding = new_counter_fields(request, path)
                created = counters.create(kind, prefix, padding, request.advance_to, now)
                if created is not None:
                    counters.record_event(
                        kind, "create", None, request.advance_to, principal.key_id, now
                    )
                    return AdvanceResult(created, advanced=True, created=True, previous_value=0)
                counter = counters.get(kind, lock=True)  # created concurrently: advance that
                assert counter is not None
            if counter.current_value >= request.advance_to:
                return AdvanceResult(
                    counter, advanced=False, created=False, previous_value=counter.current_value
                )
            advanced = counters.set_value(kind, request.advance_to, now)
            counters.record_event(
                kind, "advance", counter.current_value, request.advance_to, principal.key_id, now
            )
            return AdvanceResult(
                advanced, advanced=True, created=False, previous_value=counter.current_value
            )

    def get(self, tenant: Tenant, counter_type: str) -> Counter:
        with self.uow.transaction(read_only=True) as conn:
            counter = CounterRepository(conn, tenant).get(counter_type)
        if counter is None:
            raise counter_not_found(counter_type)
        return counter

    def list_page(self, tenant: Tenant, requested_size: int, page_token: str) -> CounterPage:
        size = page_size(requested_size)
        after = decode_token(_PAGE_KIND, page_token, str)
        with self.uow.transaction(read_only=True) as conn:
            rows = CounterRepository(conn, tenant).page(after, size + 1)
        page = rows[:size]
        next_token = encode_token(_PAGE_KIND, page[-1].counter_type) if len(rows) > size else ""
        return CounterPage(page, next_token)

    def issue(self, principal: Principal, counter_type: str, count: int) -> IssueResult:
        """Issues `count` contiguous numbers; `count` has passed check_issue_count."""
        now = datetime.now(UTC)
        with self.uow.transaction() as conn:
            counters = CounterRepository(conn, principal.tenant)
            counter = counters.increment(counter_type, count, now)
            if counter is None:
                existing = counters.get(counter_type)
                if existing is None:
                    raise counter_not_found(counter_type)
                raise counter_exhausted(existing, count)
            first = counter.current_value - count + 1
            counters.record_event(
                counter_type, "issue", first - 1, counter.current_value, principal.key_id, now
            )
        return IssueResult(counter, first, counter.current_value)
