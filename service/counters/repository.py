"""Counters, their series and their audit trail in the database. Every method runs inside
the caller's transaction.

A series row (counter_series) holds the format of a (counter_type, series); a counter
row (counters) one period's value. Statements are built once at import with bind
parameters: building SQLAlchemy expressions per call costs more than running them.

Locks are always taken series first, then counters, each set in key order, so that
calls locking several cannot deadlock. SQLite ignores FOR UPDATE: there BEGIN IMMEDIATE
serialises writers.
"""

from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    Row,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from service.auth.keys import Tenant
from service.counters.domain import (
    FISCAL_YEARLY,
    MAX_ISSUE,
    MAX_VALUE,
    MAX_VOID,
    MONTHLY,
    NEVER,
    YEARLY,
    AdvanceRequest,
    CounterChange,
    Event,
    Format,
    Series,
    type_rank,
)
from service.db.driver import Ctes, Prepared
from service.db.ids import new_id
from service.db.models import Counter as CounterRow
from service.db.models import CounterEvent, CounterSeries, Entity
from service.db.tenancy import of_tenant, tenant_params
from service.db.types import UtcDateTime
from service.entities.settings import EntitySettings
from service.entities.store import SETTINGS_COLUMNS, settings_from

S, C = CounterSeries, CounterRow
_SERIES_TABLE, _COUNTERS_TABLE = cast(Table, S.__table__), cast(Table, C.__table__)
_SERIES_COLUMNS = (
    S.counter_type,
    S.series,
    S.prefix,
    S.padding,
    S.suffix,
    S.reset,
    S.in_use,
    S.create_time,
    S.update_time,
)
_VALUE_COLUMNS = (C.current_value, C.create_time, C.update_time)
_SERIES_OF_TENANT = of_tenant(_SERIES_TABLE)
_COUNTERS_OF_TENANT = of_tenant(_COUNTERS_TABLE)
_ONE_SERIES = (
    _SERIES_OF_TENANT
    & (S.counter_type == bindparam("b_counter_type"))
    & (S.series == bindparam("b_series"))
)
_ONE = (
    _COUNTERS_OF_TENANT
    & (C.counter_type == bindparam("b_counter_type"))
    & (C.series == bindparam("b_series"))
    & (C.period == bindparam("b_period"))
)

_SAME_SERIES = (
    (S.entity_id == C.entity_id)
    & (S.mode == C.mode)
    & (S.counter_type == C.counter_type)
    & (S.series == C.series)
)
_GET_SERIES = select(*_SERIES_COLUMNS).where(_ONE_SERIES)
# A series with its entity's settings and, when it has one, the value of a period.
_FIND = (
    select(*_SERIES_COLUMNS, *SETTINGS_COLUMNS, *_VALUE_COLUMNS)
    .join(Entity, Entity.id == S.entity_id)
    .outerjoin(C, _SAME_SERIES & (C.period == bindparam("b_period")))
    .where(_ONE_SERIES)
)
_FIND_PREPARED = Prepared(_FIND)
_SERIES_WIDTH, _SETTINGS_WIDTH = len(_SERIES_COLUMNS), len(SETTINGS_COLUMNS)
_GET = select(*_VALUE_COLUMNS).where(_ONE)
_KEYS: BindParameter[Any] = bindparam("b_keys", expanding=True)
# The counters that exist, with their series; only the counters are locked (UpdateCounter
# changes only the format, and a reset only before anything was issued).
_LOCK = (
    select(C.period, *_VALUE_COLUMNS, *_SERIES_COLUMNS)
    .join(S, _SAME_SERIES)
    .where(_COUNTERS_OF_TENANT & tuple_(C.counter_type, C.series, C.period).in_(_KEYS))
    .order_by(C.counter_type, C.series, C.period)
    .with_for_update(of=C)
)
_SOME_SERIES = select(*_SERIES_COLUMNS).where(
    _SERIES_OF_TENANT & tuple_(S.counter_type, S.series).in_(_KEYS)
)
_LOCK_SERIES_FOR_UPDATE = _GET_SERIES.with_for_update()
_UPDATE = (
    update(C).where(_ONE).values(current_value=bindparam("b_value"), update_time=bindparam("b_now"))
)
_SAVE_SERIES = (
    update(S)
    .where(_ONE_SERIES)
    .values(
        prefix=bindparam("b_prefix"),
        suffix=bindparam("b_suffix"),
        padding=bindparam("b_padding"),
        reset=bindparam("b_reset"),
        update_time=bindparam("b_now"),
    )
)
# The first issue fixes the series' reset; none may have changed since it was read.
_MARK_IN_USE = (
    update(S)
    .where(_ONE_SERIES & (S.reset == bindparam("b_reset")))
    .values(in_use=True)
    .returning(S.series)
)


# The series' format as the increment finds it: the numbers are written with it.
_FORMAT_NOW = tuple(
    select(column).where(_ONE_SERIES).scalar_subquery().label(f"series_{column.key}")
    for column in (S.prefix, S.padding, S.suffix, S.reset, S.update_time)
)
_ISSUED_NAMES = [column.key for column in _VALUE_COLUMNS] + [c.name for c in _FORMAT_NOW]


# An audit row's first columns, and their values: the counter's key, bound as every
# statement on it binds it.
_EVENT_OF = ("entity_id", "mode", "counter_type", "series", "period")


def _event_of() -> tuple[BindParameter[str], ...]:
    return tuple(bindparam(f"b_{name}", type_=String()) for name in _EVENT_OF)


def _issue_statements(dialect: Any) -> tuple[Any, Any]:
    """The issue of `count` numbers as one atomic statement: the period's row made at
    `count` or raised by it. Its row lock is held to commit, so concurrent callers queue
    and each gets its own contiguous run. The guard keeps the sum within int64. A caller
    read the clock before it queued, so update_time keeps the later of the two.

    And, for PostgreSQL, the same with its audit row in one statement, so that the hot
    row's lock is held for one round trip less."""
    new = dialect.insert(C).values(
        entity_id=bindparam("b_entity_id"),
        mode=bindparam("b_mode"),
        counter_type=bindparam("b_counter_type"),
        series=bindparam("b_series"),
        period=bindparam("b_period"),
        type_rank=bindparam("b_rank"),
        current_value=bindparam("b_count", type_=BigInteger()),
        create_time=bindparam("b_now", type_=UtcDateTime()),
        update_time=bindparam("b_now", type_=UtcDateTime()),
    )
    raised = new.excluded
    upsert = new.on_conflict_do_update(
        index_elements=["entity_id", "mode", "counter_type", "series", "period"],
        set_={
            "current_value": C.current_value + raised.current_value,
            "update_time": case(
                (C.update_time > raised.update_time, C.update_time), else_=raised.update_time
            ),
        },
        where=C.current_value <= MAX_VALUE - raised.current_value,
    ).returning(*_VALUE_COLUMNS, *_FORMAT_NOW)
    issued = upsert.cte("issued")
    start = issued.c.current_value - bindparam("b_count", type_=BigInteger())
    audited = select(*(issued.c[name] for name in _ISSUED_NAMES)).add_cte(
        _issue_audit(
            issued,
            start,
            bindparam("b_count", type_=BigInteger()),
            bindparam("b_key_id", type_=BigInteger()),
            bindparam("b_idempotency_key", type_=String()),
            bindparam("b_event_key", type_=BigInteger()),
            issued,
        )
    )
    return upsert, audited


def _issue_shared_statement() -> Any:
    """The issue of several calls' numbers with one increment by their total (`b_count`),
    and each call's audit row for its own block, in one statement (PostgreSQL): the calls'
    event keys, the numbers taken ahead of each (`before`), counts, API keys and
    idempotency keys travel as arrays, unnested side by side."""
    issued = _issue_statements(postgresql)[0].cte("issued")
    shares = (
        func.unnest(
            bindparam("b_event_keys", type_=postgresql.ARRAY(BigInteger())),
            bindparam("b_befores", type_=postgresql.ARRAY(BigInteger())),
            bindparam("b_counts", type_=postgresql.ARRAY(BigInteger())),
            bindparam("b_key_ids", type_=postgresql.ARRAY(BigInteger())),
            bindparam("b_idempotency_keys", type_=postgresql.ARRAY(String())),
        )
        .table_valued("event_key", "before", "count", "api_key_id", "idempotency_key")
        .render_derived(name="shares")
    )
    start = issued.c.current_value - bindparam("b_count", type_=BigInteger()) + shares.c.before
    return select(*(issued.c[name] for name in _ISSUED_NAMES)).add_cte(
        _issue_audit(
            issued,
            start,
            shares.c.count,
            shares.c.api_key_id,
            shares.c.idempotency_key,
            shares.c.event_key,
            issued.join(shares, true()),
        )
    )


def _issue_audit(
    issued: Any, start: Any, count: Any, key_id: Any, idempotency_key: Any, event_key: Any,
    source: Any,
) -> Any:  # fmt: skip
    """The insert of issue audit rows (a CTE), one per row of `source`: the block of `count`
    numbers after `start`, at the increment's time."""
    return (
        insert(CounterEvent)
        .from_select(
            [
                *_EVENT_OF,
                "action",
                "old_value",
                "new_value",
                "first_value",
                "last_value",
                "api_key_id",
                "idempotency_key",
                "event_key",
                "create_time",
            ],
            select(
                *_event_of(),
                literal("issue"),
                start,
                start + count,
                start + 1,
                start + count,
                key_id,
                idempotency_key,
                event_key,
                issued.c.update_time,
            ).select_from(source),
        )
        .cte("audit")
    )


_ISSUE = _issue_statements(sqlite)[0]
_ISSUE_SHARED_AUDITED = Prepared(_issue_shared_statement())
_ISSUE_AUDITED = Prepared(_issue_statements(postgresql)[1])


def _advance_in_place_statement() -> Any:
    """AdvanceCounter's common case in one statement (PostgreSQL): a counter that exists,
    of a series that never resets, locked with its series; raised to `b_value` and
    audited when the domain's rule says so (domain.advanced: below the target, and at the
    expected value if one is given); its row as it was, and the raise's time if raised.
    The lock is taken and released within the statement, so the row is held for one round
    trip. A request the rule refuses, or that this statement does not cover, writes
    nothing and is decided by the general path."""
    old = (
        select(
            *_VALUE_COLUMNS,
            *(
                c.label(f"series_{c.key}") if c.key.endswith("_time") else c
                for c in _SERIES_COLUMNS
            ),
        )
        .join(S, _SAME_SERIES)
        .where(_ONE)
        .with_for_update(of=C)
        .cte("old")
    )
    target = bindparam("b_value", type_=BigInteger())
    expected = bindparam("b_expected", type_=BigInteger())
    raised = (
        update(C)
        .where(
            _ONE
            & (C.counter_type == old.c.counter_type)
            & (C.series == old.c.series)
            & (old.c.reset == NEVER)
            & (old.c.current_value < target)
            & (func.coalesce(expected, old.c.current_value) == old.c.current_value)
        )
        .values(
            current_value=target,
            update_time=func.greatest(bindparam("b_now", type_=UtcDateTime()), old.c.update_time),
        )
        .returning(C.update_time)
        .cte("raised")
    )
    audit = (
        insert(CounterEvent)
        .from_select(
            [
                *_EVENT_OF,
                "action",
                "old_value",
                "new_value",
                "reason",
                "api_key_id",
                "idempotency_key",
                "event_key",
                "create_time",
            ],
            select(
                *_event_of(),
                literal("advance"),
                old.c.current_value,
                target,
                bindparam("b_reason", type_=String()),
                bindparam("b_key_id", type_=BigInteger()),
                bindparam("b_idempotency_key", type_=String()),
                bindparam("b_event_key", type_=BigInteger()),
                raised.c.update_time,
            ).select_from(old.join(raised, true())),
        )
        .cte("audit")
    )
    return (
        select(*old.c, raised.c.update_time.label("raised_time"))
        .select_from(old.outerjoin(raised, true()))
        .add_cte(audit)
    )


_ADVANCE_IN_PLACE = Prepared(_advance_in_place_statement())


_NUMBERED_ISSUE_CTES = f"""
number_format AS (
    SELECT prefix, padding, suffix FROM counter_series
    WHERE entity_id = :b_entity_id AND mode = :b_mode AND counter_type = :b_counter_type
      AND series = '' AND reset = '{NEVER}' AND in_use
      AND strpos(prefix, '{{') = 0 AND strpos(suffix, '{{') = 0
      AND EXISTS (SELECT FROM issue_allowed)
),
issued AS (
    INSERT INTO counters (entity_id, mode, counter_type, series, period, type_rank,
                          current_value, create_time, update_time)
    SELECT :b_entity_id, :b_mode, :b_counter_type, '', '', :b_rank,
           CAST(:b_count AS bigint), :b_now, :b_now
    FROM number_format
    ON CONFLICT (entity_id, mode, counter_type, series, period) DO UPDATE
    SET current_value = counters.current_value + excluded.current_value,
        update_time = greatest(counters.update_time, excluded.update_time)
    WHERE counters.current_value <= {MAX_VALUE} - excluded.current_value
    RETURNING current_value, update_time
),
issue_audit AS (
    INSERT INTO counter_events (entity_id, mode, counter_type, series, period, action,
                                old_value, new_value, first_value, last_value, api_key_id,
                                idempotency_key, event_key, create_time)
    SELECT :b_entity_id, :b_mode, :b_counter_type, '', '', 'issue',
           current_value - CAST(:b_count AS bigint), current_value,
           current_value - CAST(:b_count AS bigint) + 1, current_value, :b_key_id,
           :b_idempotency_key, :b_event_key, update_time
    FROM issued
),
numbered AS (
    SELECT current_value - CAST(:b_count AS bigint) + 1 AS first_value, prefix, padding, suffix
    FROM issued, number_format
),
first_issue AS (
    SELECT EXISTS (
        SELECT FROM counter_series
        WHERE entity_id = :b_entity_id AND mode = :b_mode AND counter_type = :b_counter_type
          AND series = '' AND NOT in_use
    ) AS pending
)"""


def numbered_issue(
    counter_type: str,
    count: int,
    now: datetime,
    api_key_id: int | None,
    idempotency_key: str | None,
) -> Ctes:
    """`count` numbers of a counter that never resets, issued inside another statement
    (advances written with their numbers, in one round trip), which defines a CTE
    `issue_allowed` that has a row when it may issue: CTEs ending in numbered(first_value,
    prefix, padding, suffix) and first_issue(pending), whether the series exists but has
    issued nothing yet; and the expression of the number `{offset}` after the first.
    Only a series in use, without date tokens, is numbered so: a number is then the
    prefix, the value zero-padded and the suffix, in SQL as domain.format_number writes
    it (lpad cuts a longer value, hence greatest). Otherwise, or past MAX_VALUE, numbered
    is empty and nothing is written: the caller takes the general path. The increment and
    its audit row are IssueNumbers' own."""
    return Ctes(
        _NUMBERED_ISSUE_CTES,
        {
            "b_counter_type": counter_type, "b_rank": type_rank(counter_type),
            "b_count": count, "b_now": now, "b_key_id": api_key_id,
            "b_idempotency_key": idempotency_key, "b_event_key": new_id(),
        },
        _NUMBER,
    )  # fmt: skip


_VALUE = "CAST(numbered.first_value + {offset} AS text)"
_NUMBER = (
    f"numbered.prefix || lpad({_VALUE}, greatest(numbered.padding, length({_VALUE})), '0')"
    " || numbered.suffix"
)


# A counter row belongs to its series' periods only while its period has the form the
# series' reset gives them: rows advanced before a reset was changed stay, unseen.
_FITS = or_(
    and_(S.reset == NEVER, C.period == ""),
    and_(S.reset == YEARLY, func.length(C.period) == 4),
    and_(S.reset == MONTHLY, func.length(C.period) == 7),
    and_(S.reset == FISCAL_YEARLY, func.length(C.period) == 6),
)
_PAGE = (
    select(C.period, *_VALUE_COLUMNS, *_SERIES_COLUMNS)
    .join(S, _SAME_SERIES)
    .where(_COUNTERS_OF_TENANT & _FITS)
    .order_by(C.type_rank, C.series, C.period)
    .limit(bindparam("b_limit"))
)
_RECORD_EVENT = insert(CounterEvent)
_EVENTS_OF_TENANT = of_tenant(cast(Table, CounterEvent.__table__))
_EVENT_COLUMNS = (
    CounterEvent.event_key, CounterEvent.counter_type, CounterEvent.series,
    CounterEvent.period, CounterEvent.action, CounterEvent.old_value, CounterEvent.new_value,
    CounterEvent.first_value, CounterEvent.last_value, CounterEvent.reason,
    CounterEvent.api_key_id, CounterEvent.idempotency_key, CounterEvent.create_time,
)  # fmt: skip
# A page of events with a sparse series or period filter looks at this many rows at most.
EVENT_SCAN = 10_000
_SPANS_NEAR = select(CounterEvent.action, CounterEvent.first_value, CounterEvent.last_value).where(
    _EVENTS_OF_TENANT
    & (CounterEvent.counter_type == bindparam("b_counter_type"))
    & (CounterEvent.series == bindparam("b_series"))
    & (CounterEvent.period == bindparam("b_period"))
    & CounterEvent.first_value.between(bindparam("b_low"), bindparam("b_high"))
    & CounterEvent.action.in_(["issue", "void"])
)


def _event(row: Row | tuple) -> Event:
    return Event(*row)


_CREATE = {
    name: dialect.insert(C).on_conflict_do_nothing().returning(C.period)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_CREATE_SERIES = {
    name: dialect.insert(S).on_conflict_do_nothing().returning(S.series)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


@dataclass(frozen=True)
class Stored:
    """A period's stored value."""

    current_value: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class IssueShare:
    """One call's part of issues made together: how many numbers, and who asked."""

    count: int
    api_key_id: int | None
    idempotency_key: str | None


@dataclass(frozen=True)
class Issued:
    """A period's value after an issue, and the format of its series at that moment."""

    value: "Stored"
    format: Format
    series_update_time: datetime


@dataclass(frozen=True)
class Found:
    """A series, its entity's settings, and a period's value if it has one."""

    series: Series
    settings: EntitySettings
    value: Stored | None


@dataclass(frozen=True)
class Listed:
    """A counter row of a page, with its series."""

    series: Series
    period: str
    value: Stored


def _issued(row: Row | tuple[Any, ...]) -> Issued:
    value, created, updated, prefix, padding, suffix, reset, series_updated = row
    return Issued(
        Stored(value, created, updated), Format(prefix, padding, suffix, reset), series_updated
    )


def _series(row: Row | tuple[Any, ...]) -> Series:
    kind, name, prefix, padding, suffix, reset, in_use, created, updated = row
    return Series(kind, name, Format(prefix, padding, suffix, reset), in_use, created, updated)


SeriesKey = tuple[str, str]  # (counter_type, series)
CounterKey = tuple[str, str, str]  # (counter_type, series, period)


class CounterRepository:
    def __init__(
        self, conn: Connection, tenant: Tenant, idempotency_key: str | None = None
    ) -> None:
        """`idempotency_key`: the key of the call whose changes this records, if any."""
        self.conn = conn
        self.entity_id = tenant.entity_id
        self.mode = tenant.mode
        self.tenant = tenant_params(tenant)
        self.idempotency_key = idempotency_key

    def _run(self, statement: Any, **params: object) -> Any:
        bound = {f"b_{name}": value for name, value in params.items()}
        return self.conn.execute(statement, {**self.tenant, **bound})

    def _row(self, statement: Prepared, **params: object) -> tuple[Any, ...] | None:
        bound = {f"b_{name}": value for name, value in params.items()}
        return statement.row(self.conn, {**self.tenant, **bound})

    def series(self, counter_type: str, series: str) -> Series | None:
        row = self._run(_GET_SERIES, counter_type=counter_type, series=series).one_or_none()
        return None if row is None else _series(row)

    def find(self, counter_type: str, series: str, period: str = "") -> Found | None:
        """The series, with its settings and the value of `period` (in one statement)."""
        row = self._row(_FIND_PREPARED, counter_type=counter_type, series=series, period=period)
        if row is None:
            return None
        settings_end = _SERIES_WIDTH + _SETTINGS_WIDTH
        value = None if row[settings_end] is None else Stored(*row[settings_end:])
        return Found(
            _series(row[:_SERIES_WIDTH]), settings_from(row[_SERIES_WIDTH:settings_end]), value
        )

    def get(self, counter_type: str, series: str, period: str) -> Stored | None:
        row = self._run(_GET, counter_type=counter_type, series=series, period=period).one_or_none()
        return None if row is None else Stored(*row)

    def some_series(self, keys: set[SeriesKey]) -> dict[SeriesKey, Series]:
        """Those of the series that exist."""
        rows = self._run(_SOME_SERIES, keys=sorted(keys))
        return {(s.counter_type, s.series): s for s in map(_series, rows)}

    def lock_series_for_update(self, counter_type: str, series: str) -> Series | None:
        row = self._run(
            _LOCK_SERIES_FOR_UPDATE, counter_type=counter_type, series=series
        ).one_or_none()
        return None if row is None else _series(row)

    def lock(
        self, keys: set[CounterKey]
    ) -> tuple[dict[CounterKey, Stored], dict[SeriesKey, Series]]:
        """Those of the counters that exist, each locked until the transaction ends, and
        their series."""
        values: dict[CounterKey, Stored] = {}
        series: dict[SeriesKey, Series] = {}
        for row in self._run(_LOCK, keys=sorted(keys)):
            found = _series(row[4:])
            series[(found.counter_type, found.series)] = found
            values[(found.counter_type, found.series, row[0])] = Stored(*row[1:4])
        return values, series

    def advance_in_place(
        self,
        request: AdvanceRequest,
        now: datetime,
        api_key_id: int | None,
    ) -> tuple[Series, Stored, datetime | None] | None:
        """The never-resetting counter of `request` (period "") raised by the rule of
        domain.advanced and audited, in one statement (PostgreSQL; the caller checks
        UnitOfWork.statements_commit_alone): its series, its value before, and the time
        it was raised at (None: unchanged). None when it does not exist or its series
        resets: nothing was written, and the general path decides."""
        row = self._row(
            _ADVANCE_IN_PLACE, counter_type=request.counter_type, series=request.series,
            period="", value=request.advance_to, expected=request.expected_current_value,
            now=now, reason=request.reason, key_id=api_key_id,
            idempotency_key=self.idempotency_key, event_key=new_id(),
        )  # fmt: skip
        if row is None:
            return None
        series = _series(row[3:12])
        if series.format.reset != NEVER:
            return None
        return series, Stored(*row[:3]), row[12]

    def create_series(self, made: list[Series]) -> bool:
        """Inserts the series; False when a concurrent call created one of them first."""
        if not made:
            return True
        rows = [
            {
                "entity_id": self.entity_id,
                "mode": self.mode,
                "counter_type": s.counter_type,
                "series": s.series,
                "prefix": s.format.prefix,
                "suffix": s.format.suffix,
                "padding": s.format.padding,
                "reset": s.format.reset,
                "in_use": s.in_use,
                "create_time": s.create_time,
                "update_time": s.update_time,
            }
            for s in made
        ]
        return len(self.conn.execute(_CREATE_SERIES[self.conn.dialect.name], rows).all()) == len(
            made
        )

    def create_all(self, made: dict[CounterKey, Stored]) -> bool:
        """Inserts the counters; False when a concurrent call created one of them first."""
        if not made:
            return True
        rows = [
            {
                "entity_id": self.entity_id,
                "mode": self.mode,
                "counter_type": kind,
                "series": series,
                "period": period,
                "type_rank": type_rank(kind),
                "current_value": value.current_value,
                "create_time": value.create_time,
                "update_time": value.update_time,
            }
            for (kind, series, period), value in made.items()
        ]
        return len(self.conn.execute(_CREATE[self.conn.dialect.name], rows).all()) == len(made)

    def update_all(self, changed: dict[CounterKey, Stored]) -> None:
        """Stores the values and update times of counters the caller has locked."""
        if changed:
            self.conn.execute(
                _UPDATE,
                [
                    {
                        **self.tenant,
                        "b_counter_type": kind,
                        "b_series": series,
                        "b_period": period,
                        "b_value": value.current_value,
                        "b_now": value.update_time,
                    }
                    for (kind, series, period), value in changed.items()
                ],
            )

    def save_series(self, series: Series) -> None:
        f = series.format
        self._run(
            _SAVE_SERIES,
            counter_type=series.counter_type,
            series=series.series,
            prefix=f.prefix,
            suffix=f.suffix,
            padding=f.padding,
            reset=f.reset,
            now=series.update_time,
        )

    def mark_in_use(self, series: Series) -> bool:
        """Records that `series` has issued; False when its reset changed meanwhile."""
        marked = self._run(
            _MARK_IN_USE,
            counter_type=series.counter_type,
            series=series.series,
            reset=series.format.reset,
        )
        return marked.first() is not None

    def issue(
        self, key: CounterKey, count: int, now: datetime, api_key_id: int | None
    ) -> Issued | None:
        """Adds `count` to the period's counter (made at 0 if missing), audited as an
        issue; None when it would pass MAX_VALUE. The series must exist."""
        kind, series, period = key
        params: dict[str, object] = dict(
            entity_id=self.entity_id, mode=self.mode, counter_type=kind, series=series,
            period=period, rank=type_rank(kind), count=count, now=now,
        )  # fmt: skip
        if self.conn.dialect.name == "postgresql":
            audited = self._row(
                _ISSUE_AUDITED, **params, key_id=api_key_id,
                idempotency_key=self.idempotency_key, event_key=new_id(),
            )  # fmt: skip
            return None if audited is None else _issued(audited)
        row = self._run(_ISSUE, **params).one_or_none()
        if row is None:
            return None
        issued = _issued(row)
        value = issued.value.current_value
        self.record_changes(
            [
                CounterChange(
                    kind,
                    "issue",
                    value - count,
                    value,
                    api_key_id,
                    issued.value.update_time,
                    series,
                    period,
                    first_value=value - count + 1,
                    last_value=value,
                )
            ]
        )
        return issued

    def issue_shared(
        self, key: CounterKey, shares: list[IssueShare], now: datetime
    ) -> list[Issued] | None:
        """Issues the shares' numbers with one increment, each share its own contiguous
        block in order, each audited as an issue of its own (its caller's key and
        idempotency key); None when the total would pass MAX_VALUE."""
        kind, series, period = key
        total = sum(share.count for share in shares)
        params: dict[str, object] = dict(
            entity_id=self.entity_id, mode=self.mode, counter_type=kind, series=series,
            period=period, rank=type_rank(kind), count=total, now=now,
        )  # fmt: skip
        befores = list(accumulate((share.count for share in shares[:-1]), initial=0))
        postgres = self.conn.dialect.name == "postgresql"
        if postgres:  # with the audit rows, in one statement
            row = self._row(
                _ISSUE_SHARED_AUDITED, **params, event_keys=[new_id() for _ in shares],
                befores=befores, counts=[share.count for share in shares],
                key_ids=[share.api_key_id for share in shares],
                idempotency_keys=[share.idempotency_key for share in shares],
            )  # fmt: skip
        else:
            row = self._run(_ISSUE, **params).one_or_none()
        if row is None:
            return None
        issued = _issued(row)
        start = issued.value.current_value - total  # the value before the increment
        blocks = [
            Issued(
                Stored(
                    start + before + share.count, issued.value.create_time, issued.value.update_time
                ),
                issued.format,
                issued.series_update_time,
            )
            for before, share in zip(befores, shares, strict=True)
        ]
        if not postgres:
            self.conn.execute(
                _RECORD_EVENT,
                [
                    {
                        "entity_id": self.entity_id,
                        "mode": self.mode,
                        "counter_type": kind,
                        "series": series,
                        "period": period,
                        "action": "issue",
                        "old_value": start + before,
                        "new_value": start + before + share.count,
                        "first_value": start + before + 1,
                        "last_value": start + before + share.count,
                        "reason": "",
                        "api_key_id": share.api_key_id,
                        "idempotency_key": share.idempotency_key,
                        "event_key": new_id(),
                        "create_time": issued.value.update_time,
                    }
                    for before, share in zip(befores, shares, strict=True)
                ],
            )
        return blocks

    def page(
        self,
        after: tuple[int, str, str] | None,
        counter_type: str | None,
        series: str | None,
        limit: int,
    ) -> list[Listed]:
        """Up to `limit` counters after `after` (type rank, series, period), in that order."""
        statement = _PAGE
        conditions: list[ColumnElement[bool]] = []
        if after is not None:
            conditions.append(tuple_(C.type_rank, C.series, C.period) > tuple_(*after))
        if counter_type is not None:
            conditions.append(C.counter_type == counter_type)
        if series is not None:
            conditions.append(C.series == series)
        statement = statement.where(and_(true(), *conditions))
        rows = self._run(statement, limit=limit)
        return [Listed(_series(row[4:]), row[0], Stored(*row[1:4])) for row in rows]

    def spans_near(
        self, key: CounterKey, first: int, last: int
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The ranges issued, and those voided, that may overlap first..last: an issue or
        a void covers at most MAX_ISSUE or MAX_VOID values, so theirs start within that
        much of `first`. At most a few thousand rows, read by index."""
        kind, series, period = key
        rows = self._run(
            _SPANS_NEAR, counter_type=kind, series=series, period=period,
            low=first - max(MAX_ISSUE, MAX_VOID) + 1, high=last,
        )  # fmt: skip
        issued: list[tuple[int, int]] = []
        voided: list[tuple[int, int]] = []
        for action, a, b in rows:
            (issued if action == "issue" else voided).append((a, b))
        return issued, voided

    def events(
        self,
        after: int | None,
        counter_type: str | None,
        series: str | None,
        period: str | None,
        limit: int,
    ) -> tuple[list[Event], int | None]:
        """Up to `limit` events after the one with id `after`, oldest first, and where
        the next page starts (None: no more). With a series or period filter, at most
        EVENT_SCAN rows are looked at per call: a page may then come back short, its
        position past the rows looked at."""
        e = CounterEvent
        scope: ColumnElement[bool] = _EVENTS_OF_TENANT & (e.id > (after or 0))
        if counter_type is not None:
            scope = scope & (e.counter_type == counter_type)
        if series is None and period is None:
            rows = self._run(
                select(e.id, *_EVENT_COLUMNS).where(scope).order_by(e.id).limit(limit + 1)
            ).all()
            page = [_event(row[1:]) for row in rows[:limit]]
            return page, (rows[limit - 1][0] if len(rows) > limit else None)
        window = select(e.id.label("id")).where(scope).order_by(e.id).limit(EVENT_SCAN).subquery()
        wanted: ColumnElement[bool] = e.id.in_(select(window.c.id))
        if series is not None:
            wanted = wanted & (e.series == series)
        if period is not None:
            wanted = wanted & (e.period == period)
        rows = self._run(
            select(e.id, *_EVENT_COLUMNS).where(_EVENTS_OF_TENANT & wanted).order_by(e.id)
            .limit(limit + 1)
        ).all()  # fmt: skip
        page = [_event(row[1:]) for row in rows[:limit]]
        if len(rows) > limit:
            return page, rows[limit - 1][0]
        looked, last = self._run(select(func.count(), func.max(window.c.id))).one()
        return page, (last if looked == EVENT_SCAN else None)

    def record_changes(self, changes: list[CounterChange]) -> list[int]:
        """Writes the changes' audit rows; their event keys, in order."""
        keys = [new_id() for _ in changes]
        if changes:
            self.conn.execute(
                _RECORD_EVENT,
                [
                    {
                        "entity_id": self.entity_id,
                        "mode": self.mode,
                        "counter_type": c.counter_type,
                        "series": c.series,
                        "period": c.period,
                        "action": c.action,
                        "old_value": c.old_value,
                        "new_value": c.new_value,
                        "first_value": c.first_value,
                        "last_value": c.last_value,
                        "reason": c.reason,
                        "api_key_id": c.api_key_id,
                        "idempotency_key": self.idempotency_key,
                        "event_key": event_key,
                        "create_time": c.time,
                    }
                    for c, event_key in zip(changes, keys, strict=True)
                ],
            )
        return keys
