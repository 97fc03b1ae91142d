"""Idempotency records: claimed, filled and replayed in the transaction of the effect."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, select, tuple_, update

from service.auth.keys import Principal
from service.db.driver import Prepared
from service.db.models import IdempotencyRecord as Record
from service.db.tenancy import of_tenant, tenant_columns, tenant_params
from service.db.types import UtcDateTime
from service.db.uow import UnitOfWork
from service.db.upsert import upsert_into
from service.idempotency.rules import TTL, fingerprint, key_reused
from service.memory import Memory

Clock = Callable[[], datetime]
PURGE_BATCH = 5000

# A retry storm (a client retrying one key in a loop) is served from the process's memory:
# a finished record never changes until it expires, so a copy read from the database
# answers as the database would. Kept this long at most, and never closer than this to its
# record's expiry (replicas' clocks may differ by less than that); only small responses,
# for some thousands of keys (a few MB at most).
REMEMBER_FOR = timedelta(seconds=60)
REMEMBERED_KEYS = 4096
MAX_REMEMBERED_BYTES = 4096


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    response: bytes
    replayed: bool


@dataclass(frozen=True)
class _Finished:
    """A finished record as read from the database, and until when to answer from it."""

    fingerprint: str
    response: bytes
    until: datetime


class Idempotency:
    """Runs a mutating call at most once per (tenant, method, key) in 24 hours."""

    def __init__(self, uow: UnitOfWork, clock: Clock = system_clock) -> None:
        self.uow = uow
        self.clock = clock
        self._finished: Memory[tuple[str, str, str, str], _Finished] = Memory(REMEMBERED_KEYS)

    def run(
        self,
        principal: Principal,
        method: str,
        key: str,
        request_bytes: bytes,
        call: Callable[[], bytes],
    ) -> Outcome:
        """`call` (which runs the effect and returns the serialized response) inside one
        transaction with the record of its response; or the recorded response.

        The key is claimed first. A concurrent call with the same key blocks on that
        claim (PostgreSQL's unique index, SQLite's write lock) until the first call
        ends, then replays its response, or runs itself if the first one failed.
        """
        request_print = fingerprint(method, request_bytes)
        tenant = principal.tenant
        now = self.clock()
        record_of = (tenant.entity_id, tenant.mode, method, key)
        remembered = self._finished.get(record_of)
        if remembered is not None and now < remembered.until:
            return _replay(key, request_print, remembered.fingerprint, remembered.response)
        where = {**tenant_params(tenant), "b_method": method, "b_key": key}
        # A retry of a finished call, the common case, only reads: claiming would lock
        # the record's row and queue every replay behind the others.
        found = self.uow.read(lambda conn: _FIND_LIVE.row(conn, {**where, "b_since": now - TTL}))
        if found is not None:
            stored_print, stored, created = found
            self._remember(record_of, stored_print, stored, created, now)
            return _replay(key, request_print, stored_print, stored)

        def claimed(conn: Connection) -> Outcome | tuple[str, bytes | None]:
            """The call's outcome if this claims the key; else the live record's."""
            record = {**tenant_columns(principal.tenant), "method": method, "key": key}
            if _claim(conn, record, request_print, self.clock()):
                response = call()  # its unit of work joins this one
                _FILL.rows(conn, {**where, "b_response": response})
                return Outcome(response, replayed=False)
            found = _FIND.row(conn, where)
            assert found is not None, "a live record held the claim"
            stored_print, stored = found
            return stored_print, stored

        outcome = self.uow.run(claimed)  # the outermost unit: a conflict reruns it all
        if isinstance(outcome, Outcome):
            return outcome
        return _replay(key, request_print, *outcome)

    def _remember(
        self,
        record_of: tuple[str, str, str, str],
        stored_print: str,
        stored: bytes | None,
        created: datetime,
        now: datetime,
    ) -> None:
        """Keeps a finished record read from the database (committed, so final until it
        expires) for the replays that follow."""
        until = min(now + REMEMBER_FOR, created + TTL - REMEMBER_FOR)
        if now < until and stored is not None and len(stored) <= MAX_REMEMBERED_BYTES:
            self._finished.put(record_of, _Finished(stored_print, stored, until))

    def purge(self) -> int:
        """Deletes records older than 24 hours; their keys are new again. In batches of
        PURGE_BATCH, each its own short transaction: however many have expired, no one
        statement runs long or holds locks for long."""
        expired = (
            select(Record.entity_id, Record.mode, Record.method, Record.key)
            .where(Record.create_time <= self.clock() - TTL)
            .limit(PURGE_BATCH)
        )
        statement = delete(Record).where(
            tuple_(Record.entity_id, Record.mode, Record.method, Record.key).in_(expired)
        )
        purged = 0
        while True:
            batch: int = self.uow.run(lambda conn: conn.execute(statement).rowcount)
            purged += batch
            if batch < PURGE_BATCH:
                return purged


def _replay(key: str, request_print: str, stored_print: str, stored: bytes | None) -> Outcome:
    if stored_print != request_print:
        raise key_reused(key)
    assert stored is not None, "a claim is committed only with its response"
    return Outcome(stored, replayed=True)


# Built once: a replay is the hot path of a retrying client.
_RECORDS = cast(Table, Record.__table__)
_THIS = (
    of_tenant(_RECORDS)
    & (_RECORDS.c.method == bindparam("b_method"))
    & (_RECORDS.c.key == bindparam("b_key"))
)
_FIND_ANY = select(_RECORDS.c.fingerprint, _RECORDS.c.response).where(_THIS)
_FIND = Prepared(_FIND_ANY)
_FIND_LIVE = Prepared(
    select(_RECORDS.c.fingerprint, _RECORDS.c.response, _RECORDS.c.create_time)
    .where(_THIS)
    .where(_RECORDS.c.create_time > bindparam("b_since", type_=UtcDateTime()))
)
_FILL = Prepared(update(_RECORDS).where(_THIS).values(response=bindparam("b_response")))


def _claim(conn: Connection, record: dict[str, str], request_print: str, now: datetime) -> bool:
    """Claims the key: a new record, or one in place of a record past its 24 hours.
    False when a live record holds it (after waiting for its transaction to end)."""
    new = upsert_into(conn, Record).values(
        **record, fingerprint=request_print, response=None, create_time=now
    )
    statement = new.on_conflict_do_update(
        index_elements=[Record.entity_id, Record.mode, Record.method, Record.key],
        set_={"fingerprint": request_print, "response": None, "create_time": now},
        where=Record.create_time <= now - TTL,
    ).returning(Record.key)
    return conn.execute(statement).first() is not None
