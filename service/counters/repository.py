"""Counters and their audit trail in the database. Every method runs inside the
caller's transaction.

Statements are built once at import with bind parameters: building SQLAlchemy
expressions per call costs more than running them.
"""

from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, case, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.auth.keys import Tenant
from service.counters.domain import MAX_VALUE, Counter
from service.db.models import Counter as CounterRow
from service.db.models import CounterEvent
from service.db.types import UtcDateTime

_COLUMNS = (
    CounterRow.counter_type,
    CounterRow.prefix,
    CounterRow.padding,
    CounterRow.current_value,
    CounterRow.create_time,
    CounterRow.update_time,
)
_OF_TENANT = (CounterRow.entity_id == bindparam("b_entity_id")) & (
    CounterRow.mode == bindparam("b_mode")
)
_ONE = _OF_TENANT & (CounterRow.counter_type == bindparam("b_counter_type"))

_GET = select(*_COLUMNS).where(_ONE)
_GET_FOR_UPDATE = _GET.with_for_update()  # SQLite ignores it: BEGIN IMMEDIATE serialises
_SET_VALUE = (
    update(CounterRow)
    .where(_ONE)
    .values(current_value=bindparam("b_value"), update_time=bindparam("b_now"))
    .returning(*_COLUMNS)
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
_ALL = select(*_COLUMNS).where(_OF_TENANT)
_RECORD_EVENT = insert(CounterEvent)


def _create_statement(dialect_insert):  # type: ignore[no-untyped-def]
    return (
        dialect_insert(CounterRow)
        .values(
            entity_id=bindparam("b_entity_id"),
            mode=bindparam("b_mode"),
            counter_type=bindparam("b_counter_type"),
            prefix=bindparam("b_prefix"),
            padding=bindparam("b_padding"),
            current_value=bindparam("b_value"),
            create_time=bindparam("b_now"),
            update_time=bindparam("b_now"),
        )
        .on_conflict_do_nothing()
        .returning(*_COLUMNS)
    )


_CREATE = {
    "postgresql": _create_statement(postgresql.insert),
    "sqlite": _create_statement(sqlite.insert),
}


def _counter(row: Row | None) -> Counter | None:
    return None if row is None else Counter(*row)


class CounterRepository:
    def __init__(self, conn: Connection, tenant: Tenant) -> None:
        self.conn = conn
        self.entity_id = tenant.entity_id
        self.mode = tenant.mode
        # Bind names differ from column names: UPDATE and INSERT reserve those.
        self.tenant = {"b_entity_id": tenant.entity_id, "b_mode": tenant.mode}

    def _one(self, statement, **params) -> Counter | None:  # type: ignore[no-untyped-def]
        bound = {f"b_{name}": value for name, value in params.items()}
        return _counter(self.conn.execute(statement, {**self.tenant, **bound}).one_or_none())

    def get(self, counter_type: str, lock: bool = False) -> Counter | None:
        return self._one(_GET_FOR_UPDATE if lock else _GET, counter_type=counter_type)

    def create(
        self, counter_type: str, prefix: str, padding: int, value: int, now: datetime
    ) -> Counter | None:
        """Inserts the counter; None when a concurrent call created it first."""
        return self._one(
            _CREATE[self.conn.dialect.name],
            counter_type=counter_type,
            prefix=prefix,
            padding=padding,
            value=value,
            now=now,
        )

    def set_value(self, counter_type: str, value: int, now: datetime) -> Counter:
        counter = self._one(_SET_VALUE, counter_type=counter_type, value=value, now=now)
        assert counter is not None, "set_value on a counter the caller has locked"
        return counter

    def increment(self, counter_type: str, count: int, now: datetime) -> Counter | None:
        """Adds `count`; None when the counter is missing or would pass MAX_VALUE."""
        return self._one(_INCREMENT, counter_type=counter_type, count=count, now=now)

    def all(self) -> list[Counter]:
        """The tenant's counters: at most one per counter type, so always a handful."""
        return [Counter(*row) for row in self.conn.execute(_ALL, self.tenant)]

    def record_event(
        self,
        counter_type: str,
        action: str,
        old_value: int | None,
        new_value: int,
        api_key_id: int | None,
        now: datetime,
    ) -> None:
        self.conn.execute(
            _RECORD_EVENT,
            {
                "entity_id": self.entity_id,
                "mode": self.mode,
                "counter_type": counter_type,
                "action": action,
                "old_value": old_value,
                "new_value": new_value,
                "api_key_id": api_key_id,
                "create_time": now,
            },
        )
