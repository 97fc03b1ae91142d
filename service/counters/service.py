"""Counter use cases: each one transaction, committed only when it succeeds."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import methodcaller
from typing import Protocol

from sqlalchemy import Connection

from service.auth.keys import Principal, Tenant
from service.counters.domain import (
    NEVER,
    AdvanceRequest,
    AdvanceResult,
    Calendar,
    Counter,
    CounterChange,
    Event,
    Format,
    IssueResult,
    Series,
    VoidRequest,
    advanced,
    change_of,
    check_period,
    check_voidable,
    counter_exhausted,
    counter_not_found,
    date_out_of_range,
    format_change,
    read_number,
    type_rank,
    updated,
    void_change,
)
from service.counters.repository import (
    CounterKey,
    CounterRepository,
    Issued,
    IssueShare,
    SeriesKey,
    Stored,
    numbered_issue,
)
from service.db import coalesce
from service.db.driver import Ctes
from service.db.failures import RefusedByDatabase
from service.db.uow import UnitOfWork
from service.entities.settings import EntitySettings
from service.entities.store import load_settings
from service.errors import ServiceError, TransientConflict
from service.memory import Memory
from service.pagination import PageTokens, invalid_page_token, page_size

_MAX_REMEMBERED = 100_000
SKIPS_AFTER_REFUSAL = 100
_EVENTS_KIND = "counter_events"
# Tokens of the first version held a type name; these hold a position and the filters.
_PAGE_KIND = "counters.v2"


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next_page_token: str


@dataclass(frozen=True)
class VoidResult:
    numbers: list[str]
    event: Event


@dataclass(frozen=True)
class CounterPage:
    counters: list[Counter]
    next_page_token: str


class Metrics(Protocol):
    """Where committed effects are counted (service/observability.py)."""

    def advanced(self, counter_type: str) -> None: ...

    def issued(self, counter_type: str, count: int) -> None: ...


@dataclass(frozen=True)
class _Seen:
    """The series and counters a batch has read or made so far."""

    series: dict[SeriesKey, Series]
    values: dict[CounterKey, Stored]


class Counters:
    """The counters' use cases, and the API other domains take numbers through."""

    def __init__(self, uow: UnitOfWork, tokens: PageTokens, metrics: Metrics | None = None) -> None:
        self.uow = uow
        self.tokens = tokens
        self.metrics = metrics
        # Series known to be in use and never resetting: their reset is fixed for good, so
        # an issue from them needs no read first (see issue_if_any).
        self._never_resets: Memory[tuple[str, str, str, str], bool] = Memory(_MAX_REMEMBERED)
        # Counters another use case's statement could not issue from lately, and how many
        # more of its calls issue the general way before it asks again (issue_within).
        self._not_within: Memory[tuple[str, str, str], int] = Memory(_MAX_REMEMBERED)

    def advance(self, principal: Principal, request: AdvanceRequest) -> AdvanceResult:
        """Raises the counter to `request.advance_to`, creating it (and its series) if
        missing. `request` has passed check_advance.

        Where one statement commits by itself (PostgreSQL), the common case (a counter
        that exists and never resets) is one statement: no BEGIN or COMMIT, and the
        row's lock held for that one round trip. Anything else takes the general path."""
        if self.uow.statements_commit_alone and not request.validate_only and not request.period:
            done = self.uow.statement(lambda conn: self._advance_in_place(conn, principal, request))
            if done is not None:
                return done
        [outcome] = self.advance_many(principal, [request], validate_only=request.validate_only)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _advance_in_place(
        self, conn: Connection, principal: Principal, request: AdvanceRequest
    ) -> AdvanceResult | None:
        """The statement decides as domain.advanced does, for the case it covers; the
        answer is the domain's, from the row as the statement found it."""
        counters = CounterRepository(conn, principal.tenant, principal.idempotency_key)
        now = datetime.now(UTC)
        locked = counters.advance_in_place(request, now, principal.key_id)
        if locked is None:
            return None
        series, before, raised_time = locked
        calendar = self._calendar_for(conn, principal.tenant, series.format, now)
        counter = series.counter("", calendar, *_times(before))
        result = advanced(series, counter, request, now, calendar)
        if result.advanced != (raised_time is not None):  # the statement and the rule differ
            raise AssertionError(f"advance in place disagrees with the rule: {result}")
        if result.advanced:
            self._count(methodcaller("advanced", request.counter_type))
        return result

    def advance_many(
        self, principal: Principal, requests: list[AdvanceRequest], validate_only: bool = False
    ) -> list[AdvanceResult | Exception]:
        """Each request applied in turn, in one transaction of a few statements whatever
        their number: the series and counters are locked at once, every outcome is decided
        in memory, then the changes and their audit rows are written together. A request
        that fails (a missing counter without a prefix, a period of the wrong form) gets
        its error and changes nothing; the others still apply. Requests have passed
        check_advance. With `validate_only`, or for a request that asks it, every outcome
        is decided the same way and nothing is written.

        Should the database refuse those writes for no rule of ours (a constraint, a
        trigger), they are undone and the requests applied one at a time, each in its
        own savepoint, so that only the request it refuses fails.

        The clock is read once the rows are locked, so update times and audit times
        follow the order of the changes.
        """
        if not requests:
            return []
        return self.uow.run(
            lambda conn: self._advance_many(conn, principal, requests, not validate_only)
        )

    def _advance_many(
        self,
        conn: Connection,
        principal: Principal,
        requests: list[AdvanceRequest],
        write: bool,
    ) -> list[AdvanceResult | Exception]:
        counters = CounterRepository(conn, principal.tenant, principal.idempotency_key)
        values, series = counters.lock({(r.counter_type, r.series, r.period) for r in requests})
        unseen = {(r.counter_type, r.series) for r in requests} - series.keys()
        if unseen:  # a new period or series: a request creates a counter
            series.update(counters.some_series(unseen))
        now = datetime.now(UTC)
        if any(s.format.dated for s in series.values()) or any(_dated(r) for r in requests):
            calendar = _entity_calendar(conn, principal.tenant, now)
        else:  # no number depends on a date: the entity's calendar is not needed
            calendar = Calendar(now.date())
        seen = _Seen(series, values)
        batch = _Batch(counters, calendar, now, principal.key_id)
        if len(requests) == 1 or not write:  # its failure is the call's: no savepoint needed
            outcomes = batch.apply(seen, requests, write)[0]
        else:
            outcomes = self._apply_in_savepoints(batch, seen, requests)
        for request, outcome in zip(requests, outcomes, strict=True):
            changed = isinstance(outcome, AdvanceResult) and outcome.advanced
            if write and changed and not request.validate_only:
                self._count(methodcaller("advanced", request.counter_type))
        return outcomes

    def _apply_in_savepoints(
        self, batch: "_Batch", seen: _Seen, requests: list[AdvanceRequest]
    ) -> list[AdvanceResult | Exception]:
        try:
            with self.uow.savepoint():
                return batch.apply(seen, requests, write=True)[0]
        except RefusedByDatabase:
            pass
        outcomes: list[AdvanceResult | Exception] = []
        for request in requests:
            try:
                with self.uow.savepoint():
                    [outcome], seen = batch.apply(seen, [request], write=True)
            except RefusedByDatabase as error:
                outcome = error
            outcomes.append(outcome)
        return outcomes

    def get(self, tenant: Tenant, counter_type: str, series: str = "", period: str = "") -> Counter:
        """One period's counter; a period not started yet has current_value 0 (nothing is
        written). An empty period of a resetting counter is today's. One statement, unless
        today's period must be found first (autocommit on PostgreSQL: see uow.read)."""

        def get(conn: Connection) -> Counter:
            counters = CounterRepository(conn, tenant)
            found = counters.find(counter_type, series, period)
            if found is None:
                raise counter_not_found(counter_type, series)
            calendar = _calendar(found.settings, datetime.now(UTC))
            if not period and found.series.format.reset != NEVER:
                return _shown(counters, found.series, period, calendar)
            check_period(found.series.format.reset, period, counter_type, series, "period")
            return _counter(found.series, period, calendar, found.value)

        return self.uow.read(get)

    def list_page(
        self,
        tenant: Tenant,
        requested_size: int,
        page_token: str,
        counter_type: str | None = None,
        series: str | None = None,
    ) -> CounterPage:
        """Counters in counter-type order, then by series and period. The token holds the
        last counter returned and the filters, which the next call must repeat."""
        size = page_size(requested_size)
        filters = [counter_type or "", series or ""]
        position = self.tokens.decode(_PAGE_KIND, tenant, page_token, list)
        after = None if position is None else _position(position, filters)

        def read(conn: Connection) -> tuple[list[Counter], bool]:
            counters = CounterRepository(conn, tenant)
            rows = counters.page(after, counter_type, series, size + 1)
            if not rows:
                return [], False
            calendar = _entity_calendar(conn, tenant, datetime.now(UTC))
            page = [
                row.series.counter(row.period, calendar, *_times(row.value)) for row in rows[:size]
            ]
            return page, len(rows) > size

        page, more = self.uow.run(read, read_only=True)
        next_token = ""
        if more:
            last = page[-1]
            next_token = self.tokens.encode(
                _PAGE_KIND,
                tenant,
                [type_rank(last.counter_type), last.series, last.period, *filters],
            )
        return CounterPage(page, next_token)

    def issue(
        self,
        principal: Principal,
        counter_type: str,
        count: int,
        series: str = "",
        document_date: date | None = None,
    ) -> IssueResult:
        """Issues `count` contiguous numbers; `count` has passed check_issue_count."""
        result = self.issue_if_any(principal, counter_type, count, series, document_date)
        if result is None:
            raise counter_not_found(counter_type, series)
        return result

    def issue_if_any(
        self,
        principal: Principal,
        counter_type: str,
        count: int = 1,
        series: str = "",
        document_date: date | None = None,
    ) -> IssueResult | None:
        """Issues `count` numbers, audited, in the period of `document_date` (default:
        today in the entity's time zone); None when the tenant has no such series. Run
        inside another use case's unit of work (CreateAdvance numbering an advance), it
        issues in that transaction: should that fail, no number is used up.

        The series' format is read first, outside any lock: a change of format applies to
        the calls that start after it committed."""

        known = (principal.tenant.entity_id, principal.tenant.mode, counter_type, series)
        hot = self._never_resets.get(known) is not None

        def issue(conn: Connection) -> IssueResult | None:
            counters = CounterRepository(conn, principal.tenant, principal.idempotency_key)
            now = datetime.now(UTC)
            calendar: Calendar | None = None
            if hot:  # period "", one statement
                period = ""
            else:
                lookup = counters.find(counter_type, series)
                if lookup is None:
                    return None
                found = lookup.series
                calendar = _calendar(lookup.settings, now)
                day = document_date or calendar.today
                reset = found.format.reset
                if not calendar.in_range(reset, day):
                    raise date_out_of_range("document_date")
                period = calendar.period_of(reset, day)
                if not found.in_use and not counters.mark_in_use(found):
                    raise reset_changed()  # retried: the next attempt reads the new reset
                if found.in_use and reset == NEVER:  # a reset in use never changes again
                    self._never_resets.put(known, True)
            key = (counter_type, series, period)
            share = _Share(principal.tenant, key, IssueShare(count, principal.key_id,
                           principal.idempotency_key), now)  # fmt: skip
            issued = coalesce.together(share, lambda shares: _issue_together(conn, shares))
            if issued is None:  # not coalesced with other calls: alone
                issued = counters.issue(key, count, now, principal.key_id)
            if issued is None:
                raise counter_exhausted(self._exhausted(counters, key, calendar, now), count)
            if calendar is None:
                calendar = self._calendar_for(conn, principal.tenant, issued.format, now)
            made = Series(counter_type, series, issued.format, True, now, issued.series_update_time)
            value = issued.value
            counter = made.counter(period, calendar, *_times(value))
            counter = counter.dated(document_date or calendar.today, calendar)
            self._count(methodcaller("issued", counter_type, count))
            return IssueResult(counter, value.current_value - count + 1, value.current_value)

        # The hot path writes in one statement: where that commits by itself, no BEGIN or
        # COMMIT, and the row is held for one round trip (a date read after it, if the
        # format needs one, only builds the answer).
        return self.uow.statement(issue) if hot else self.uow.run(issue)

    def update(
        self,
        principal: Principal,
        counter_type: str,
        series: str,
        changes: dict[str, object],
        period: str = "",
    ) -> Counter:
        """Changes the format of a (counter_type, series) for the numbers issued from
        then on, audited; its reset only while nothing was issued from it. Returns the
        counter of `period` (default: today's). `changes` have been checked."""

        def update(conn: Connection) -> Counter:
            counters = CounterRepository(conn, principal.tenant, principal.idempotency_key)
            before = counters.lock_series_for_update(counter_type, series)
            if before is None:
                raise counter_not_found(counter_type, series)
            now = datetime.now(UTC)
            after = updated(before, changes, now)
            calendar = _entity_calendar(conn, principal.tenant, now)
            shown = _shown(counters, after, period, calendar)
            if after != before:
                counters.save_series(after)
                counters.record_changes([format_change(before, after, principal.key_id)])
            return shown

        return self.uow.run(update)

    def void(self, principal: Principal, request: VoidRequest) -> VoidResult:
        """Records that issued numbers were never used, for the request's reason; the
        counter's value stays. `request` has passed check_void. The counter's row is
        locked while its issues and voids are checked, so two voids of one number cannot
        both succeed."""

        def void(conn: Connection) -> VoidResult:
            counters = CounterRepository(conn, principal.tenant, principal.idempotency_key)
            kind, name, period = request.counter_type, request.series, request.period
            lookup = counters.find(kind, name, period)
            if lookup is None:
                raise counter_not_found(kind, name)
            found = lookup.series
            check_period(found.format.reset, period, kind, name, "period")
            key = (kind, name, period)
            values, _ = counters.lock({key})
            current = values[key].current_value if key in values else 0
            issued, voided = counters.spans_near(key, request.first_value, request.last_value)
            check_voidable(request, issued, voided)
            now = datetime.now(UTC)
            change = void_change(request, current, principal.key_id, now)
            [event_key] = counters.record_changes([change])
            counter = _counter(found, period, _calendar(lookup.settings, now), values.get(key))
            numbers = [
                counter.number(v) for v in range(change.first_value or 0, request.last_value + 1)
            ]
            event = Event(
                event_key, kind, name, period, "void", current, current, request.first_value,
                request.last_value, change.reason, principal.key_id, principal.idempotency_key,
                now,
            )  # fmt: skip
            return VoidResult(numbers, event)

        return self.uow.run(void)

    def advance_to_supplied(
        self, principal: Principal, counter_type: str, number: str, reason: str
    ) -> AdvanceResult | None:
        """When `number` (supplied by a caller, such as a migrated document's) is written
        in the format of the type's main series and lies above its period's value, advances
        that counter to it, audited with `reason`; None when it has another form. Run inside
        the caller's unit of work, it changes nothing if that one fails."""
        [read] = self.read_supplied(principal.tenant, counter_type, [number])
        if read is None:
            return None
        period, value = read
        return self.advance(
            principal, AdvanceRequest(counter_type, value, period=period, reason=reason)
        )

    def read_supplied(
        self, tenant: Tenant, counter_type: str, numbers: list[str]
    ) -> list[tuple[str, int] | None]:
        """For each of `numbers`, its period and value when it is written in the format of
        the type's main series (see read_number), else None; the format is read once."""
        found = self.uow.run(lambda conn: CounterRepository(conn, tenant).series(counter_type, ""))
        return [None if found is None else read_number(found.format, n) for n in numbers]

    def events_page(
        self,
        tenant: Tenant,
        requested_size: int,
        page_token: str,
        counter_type: str | None = None,
        series: str | None = None,
        period: str | None = None,
    ) -> EventPage:
        """The tenant's counter events, oldest first. The token holds where the next page
        starts (the internal event id, sealed: it counts every tenant's events) and the
        filters, which the next call must repeat."""
        size = page_size(requested_size)
        filters = [counter_type or "", series or "", period or ""]
        position = self.tokens.decode(_EVENTS_KIND, tenant, page_token, list)
        after = None
        if position is not None:
            if len(position) != 4 or not isinstance(position[0], int) or position[1:] != filters:
                raise invalid_page_token()
            after = self.tokens.unseal(position[0])
        events, next_at = self.uow.read(
            lambda conn: CounterRepository(conn, tenant).events(
                after, counter_type, series, period, size
            )
        )
        token = ""
        if next_at is not None:
            token = self.tokens.encode(_EVENTS_KIND, tenant, [self.tokens.seal(next_at), *filters])
        return EventPage(events, token)

    @staticmethod
    def _calendar_for(conn: Connection, tenant: Tenant, found: Format, now: datetime) -> Calendar:
        """The entity's calendar when numbers of `found` depend on a date."""
        if found.dated:
            return _entity_calendar(conn, tenant, now)
        return Calendar(now.date())

    @staticmethod
    def _exhausted(
        counters: CounterRepository, key: CounterKey, calendar: Calendar | None, now: datetime
    ) -> Counter:
        found = counters.find(*key)
        assert found is not None and found.value is not None  # only a full one refuses
        return found.series.counter(
            key[2], calendar or _calendar(found.settings, now), found.value.current_value
        )

    def issue_within(
        self, principal: Principal, counter_type: str, count: int, now: datetime
    ) -> Ctes | None:
        """`count` numbers of `counter_type`, issued by another use case's statement
        (repository.numbered_issue); `issued_within` once it has, `not_issued_within` if
        it could not. None while the counter refused lately: issue the general way."""
        known = (principal.tenant.entity_id, principal.tenant.mode, counter_type)
        skips = self._not_within.get(known)
        if skips:
            self._not_within.put(known, skips - 1)
            return None
        return numbered_issue(counter_type, count, now, principal.key_id, principal.idempotency_key)

    def issued_within(self, counter_type: str, count: int) -> None:
        """Counts the numbers issue_within's statement issued, once they are committed."""
        self._count(methodcaller("issued", counter_type, count))

    def not_issued_within(self, principal: Principal, counter_type: str) -> None:
        """issue_within's statement could not issue (the counter resets, has date tokens,
        is missing or full): its next SKIPS_AFTER_REFUSAL calls issue the general way
        without asking, one wasted round trip in that many at most if it never can."""
        known = (principal.tenant.entity_id, principal.tenant.mode, counter_type)
        self._not_within.put(known, SKIPS_AFTER_REFUSAL)

    def _count(self, count: Callable[[Metrics], None]) -> None:
        """Counts an effect once its transaction has committed: never for one rolled back
        or run again."""
        if self.metrics is not None:
            metrics = self.metrics
            self.uow.after_commit(lambda: count(metrics))


@dataclass(frozen=True)
class _Batch:
    """What every request of one advance call is decided with."""

    counters: CounterRepository
    calendar: Calendar
    now: datetime
    key_id: int | None

    def apply(
        self, seen: _Seen, requests: list[AdvanceRequest], write: bool
    ) -> tuple[list[AdvanceResult | Exception], _Seen]:
        """The requests decided in memory against the `seen` (locked) series and
        counters, then, if `write`, written; their outcomes, and what they now are. A
        request that asks only to be validated leaves them as they were."""
        series, values = dict(seen.series), dict(seen.values)
        shown: dict[CounterKey, Counter] = {}  # each counter built once, then as it changes
        outcomes: list[AdvanceResult | Exception] = []
        changes: list[CounterChange] = []
        for request in requests:
            series_key = (request.counter_type, request.series)
            key = (*series_key, request.period)
            found, stored = series.get(series_key), values.get(key)
            counter = shown.get(key)
            if counter is None and found is not None and stored is not None:
                counter = shown[key] = found.counter(request.period, self.calendar, *_times(stored))
            try:
                result = advanced(found, counter, request, self.now, self.calendar)
            except ServiceError as error:
                outcomes.append(error)
                continue
            outcomes.append(result)
            if result.advanced and not request.validate_only:
                if result.new_series is not None:
                    series[series_key] = result.new_series
                made = shown[key] = result.counter
                assert made.create_time is not None and made.update_time is not None
                values[key] = Stored(made.current_value, made.create_time, made.update_time)
                changes.append(change_of(result, self.key_id, request.reason))
        if write:
            self._write(seen, _Seen(series, values), changes)
        return outcomes, _Seen(series, values)

    def _write(self, before: _Seen, after: _Seen, changes: list[CounterChange]) -> None:
        counters = self.counters
        made_series = [s for key, s in after.series.items() if key not in before.series]
        made = {key: v for key, v in after.values.items() if key not in before.values}
        if not counters.create_series(made_series) or not counters.create_all(made):
            raise created_concurrently()  # retried: the next attempt locks those rows
        counters.update_all(
            {key: v for key, v in after.values.items() if before.values.get(key, v) != v}
        )
        counters.record_changes(changes)


@dataclass(frozen=True)
class _Share:
    """A call's part in issues made together with other calls' (db/coalesce.py)."""

    tenant: Tenant
    key: CounterKey
    share: IssueShare
    now: datetime


def _issue_together(conn: Connection, shares: list[_Share]) -> list[Issued]:
    """One increment for calls that issue from the same counter and period, each its own
    block, in order. Calls that differ (another period: a document date's day ended
    between them) or would exhaust the counter cannot be served together: each then runs
    alone, and gets what it would have got."""
    tenant, key = shares[0].tenant, shares[0].key
    if any(s.tenant != tenant or s.key != key for s in shares):
        raise coalesce.GroupFailed()
    now = max(s.now for s in shares)
    issued = CounterRepository(conn, tenant).issue_shared(key, [s.share for s in shares], now)
    if issued is None:
        raise coalesce.GroupFailed()
    return issued


def _dated(request: AdvanceRequest) -> bool:
    """Whether the series a request would create numbers by date."""
    return Format(request.prefix or "", 1, request.suffix or "", request.reset or NEVER).dated


def _entity_calendar(conn: Connection, tenant: Tenant, now: datetime) -> Calendar:
    return _calendar(load_settings(conn, tenant.entity_id), now)


def _calendar(settings: EntitySettings, now: datetime) -> Calendar:
    return Calendar(settings.today(now), settings.fiscal_year_start_month)


def _shown(counters: CounterRepository, series: Series, period: str, calendar: Calendar) -> Counter:
    """The counter of `period` (empty: today's) as it stands, started or not."""
    reset = series.format.reset
    if not period and reset != NEVER:
        period = calendar.period_of(reset, calendar.today)
    else:
        check_period(reset, period, series.counter_type, series.series, "period")
    return _counter(
        series, period, calendar, counters.get(series.counter_type, series.series, period)
    )


def _counter(series: Series, period: str, calendar: Calendar, stored: Stored | None) -> Counter:
    if stored is None:
        return series.counter(period, calendar)
    return series.counter(period, calendar, *_times(stored))


def _times(stored: Stored) -> tuple[int, datetime, datetime]:
    return stored.current_value, stored.create_time, stored.update_time


def _position(position: list, filters: list[str]) -> tuple[int, str, str]:
    """The keyset position a token holds, which must have been made with `filters`."""
    if not (
        len(position) == 5
        and isinstance(position[0], int)
        and all(isinstance(part, str) for part in position[1:])
        and position[3:] == filters
    ):
        raise invalid_page_token()
    return (position[0], position[1], position[2])


def history(
    uow: UnitOfWork,
    tenant: Tenant,
    counter_type: str | None = None,
    series: str | None = None,
    page: int = 1000,
) -> Iterator[Event]:
    """Every event of the tenant, oldest first, read `page` at a time: memory stays bounded
    however many there are (`counters history` streams them out as it reads)."""

    def read(after: int | None) -> tuple[list[Event], int | None]:
        return uow.read(
            lambda conn: CounterRepository(conn, tenant).events(
                after, counter_type, series, None, page
            )
        )

    events, after = read(None)
    while True:
        yield from events
        if after is None:
            return
        events, after = read(after)


def created_concurrently() -> TransientConflict:
    return TransientConflict(
        "TRANSIENT_CONFLICT",
        "another call created the same counter at the same moment; it was retried and "
        "still conflicts: try again",
    )


def reset_changed() -> TransientConflict:
    return TransientConflict(
        "TRANSIENT_CONFLICT",
        "the counter's reset changed while numbers were being issued; it was retried and "
        "still conflicts: try again",
    )
