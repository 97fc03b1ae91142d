"""Counters and their audit trail in the database. Every method runs inside the
caller's transaction.

Statements are built once at import with bind parameters: building SQLAlchemy
expressions per call costs more than running them.
"""

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Row,
    String,
    Table,
    bindparam,
    case,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from service.auth.keys import Tenant
from service.counters.domain import MAX_VALUE, Counter, CounterChange
from service.db.models import Counter as CounterRow
from service.db.models import CounterEvent
from service.db.tenancy import of_tenant, tenant_params
from service.db.types import UtcDateTime

_COLUMNS = (
    CounterRow.counter_type,
    CounterRow.prefix,
    CounterRow.padding,
    CounterRow.current_value,
    CounterRow.create_time,
    CounterRow.update_time,
)
_OF_TENANT = of_tenant(cast(Table, CounterRow.__table__))
_ONE = _OF_TENANT & (CounterRow.counter_type == bindparam("b_counter_type"))

_GET = select(*_COLUMNS).where(_ONE)
# In one order, so that calls locking several counters cannot deadlock. SQLite ignores
# FOR UPDATE: there BEGIN IMMEDIATE serialises writers.
_LOCK = (
    select(*_COLUMNS)
    .where(_OF_TENANT & CounterRow.counter_type.in_(bindparam("b_kinds", expanding=True)))
    .order_by(CounterRow.counter_type)
    .with_for_update()
)
_UPDATE = (
    update(CounterRow)
    .where(_ONE)
    .values(current_value=bindparam("b_value"), update_time=bindparam("b_now"))
)
# One atomic statement; its row lock is held to commit, so concurrent callers queue
# and each gets its own contiguous run. The guard keeps the sum within int64. A caller
# read the clock before it queued, so update_time keeps the later of the two.
_NOW = bindparam("b_now", type_=UtcDateTime())
_INCREMENT = (
    update(CounterRow)
    .where(_ONE & (CounterRow.current_value <= MAX_VALUE - bindparam("b_count")))
    .values(
        current_value=CounterRow.current_value + bindparam("b_count"),
        update_time=case(
            (CounterRow.update_time > _NOW, CounterRow.update_time),
            else_=_NOW,
        ),
    )
    .returning(*_COLUMNS)
)
# PostgreSQL: the increment and its audit row in one statement, so the hot row's lock
# is held for one round trip less.
_ISSUED = _INCREMENT.cte("issued")
_ISSUE_AUDITED = select(*(_ISSUED.c[column.name] for column in _COLUMNS)).add_cte(
    insert(CounterEvent)
    .from_select(
        [
            "entity_id",
            "mode",
            "counter_type",
            "action",
            "old_value",
            "new_value",
            "api_key_id",
            "create_time",
        ],
        select(
            bindparam("b_entity_id", type_=String()),
            bindparam("b_mode", type_=String()),
            _ISSUED.c.counter_type,
            literal("issue"),
            _ISSUED.c.current_value - bindparam("b_count"),
            _ISSUED.c.current_value,
            bindparam("b_key_id", type_=BigInteger()),
            _ISSUED.c.update_time,
        ),
    )
    .cte("audit")
)
_ALL = select(*_COLUMNS).where(_OF_TENANT)
_RECORD_EVENT = insert(CounterEvent)


_CREATE = {
    "postgresql": postgresql.insert(CounterRow)
    .on_conflict_do_nothing()
    .returning(CounterRow.counter_type),
    "sqlite": sqlite.insert(CounterRow).on_conflict_do_nothing().returning(CounterRow.counter_type),
}


def _counter(row: Row | None) -> Counter | None:
    return None if row is None else Counter(*row)


class CounterRepository:
    def __init__(self, conn: Connection, tenant: Tenant) -> None:
        self.conn = conn
        self.entity_id = tenant.entity_id
        self.mode = tenant.mode
        self.tenant = tenant_params(tenant)

    def _one(self, statement: Executable, **params: object) -> Counter | None:
        bound = {f"b_{name}": value for name, value in params.items()}
        return _counter(self.conn.execute(statement, {**self.tenant, **bound}).one_or_none())

    def get(self, counter_type: str) -> Counter | None:
        return self._one(_GET, counter_type=counter_type)

    def lock(self, counter_types: set[str]) -> dict[str, Counter]:
        """Those of the counters that exist, each locked until the transaction ends."""
        rows = self.conn.execute(_LOCK, {**self.tenant, "b_kinds": sorted(counter_types)})
        return {row.counter_type: Counter(*row) for row in rows}

    def create_all(self, counters: list[Counter]) -> bool:
        """Inserts the counters; False when a concurrent call created one of them first."""
        if not counters:
            return True
        result = self.conn.execute(
            _CREATE[self.conn.dialect.name],
            [
                {
                    "entity_id": self.entity_id,
                    "mode": self.mode,
                    "counter_type": c.counter_type,
                    "prefix": c.prefix,
                    "padding": c.padding,
                    "current_value": c.current_value,
                    "create_time": c.create_time,
                    "update_time": c.update_time,
                }
                for c in counters
            ],
        )
        return len(result.all()) == len(counters)

    def update_all(self, counters: list[Counter]) -> None:
        """Stores the values and update times of counters the caller has locked."""
        if counters:
            self.conn.execute(
                _UPDATE,
                [
                    {
                        **self.tenant,
                        "b_counter_type": c.counter_type,
                        "b_value": c.current_value,
                        "b_now": c.update_time,
                    }
                    for c in counters
                ],
            )

    def issue(
        self, counter_type: str, count: int, now: datetime, api_key_id: int | None
    ) -> Counter | None:
        """Adds `count`, audited as an issue; None when the counter is missing or would
        pass MAX_VALUE."""
        if self.conn.dialect.name == "postgresql":
            return self._one(
                _ISSUE_AUDITED, counter_type=counter_type, count=count, now=now, key_id=api_key_id
            )
        counter = self._one(_INCREMENT, counter_type=counter_type, count=count, now=now)
        if counter is not None:
            value = counter.current_value
            change = CounterChange(
                counter_type, "issue", value - count, value, api_key_id, counter.update_time
            )
            self.record_changes([change])
        return counter

    def all(self) -> list[Counter]:
        """The tenant's counters: at most one per counter type, so always a handful."""
        return [Counter(*row) for row in self.conn.execute(_ALL, self.tenant)]

    def record_changes(self, changes: list[CounterChange]) -> None:
        if changes:
            self.conn.execute(
                _RECORD_EVENT,
                [
                    {
                        "entity_id": self.entity_id,
                        "mode": self.mode,
                        "counter_type": c.counter_type,
                        "action": c.action,
                        "old_value": c.old_value,
                        "new_value": c.new_value,
                        "api_key_id": c.api_key_id,
                        "create_time": c.time,
                    }
                    for c in changes
                ],
            )
