"""Idempotency records: claimed, filled and replayed in the transaction of the effect."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from service.auth.keys import Principal
from service.db.models import IdempotencyRecord as Record
from service.db.types import UtcDateTime
from service.db.uow import UnitOfWork
from service.idempotency.rules import TTL, fingerprint, key_reused

Clock = Callable[[], datetime]
PURGE_BATCH = 5000


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    response: bytes
    replayed: bool


class Idempotency:
    """Runs a mutating call at most once per (tenant, method, key) in 24 hours."""

    def __init__(self, uow: UnitOfWork, clock: Clock = system_clock) -> None:
        self.uow = uow
        self.clock = clock

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
        where = _record(principal, method, key)
        # A retry of a finished call, the common case, only reads: claiming would lock
        # the record's row and queue every replay behind the others.
        with self.uow.single_read() as conn:
            found = conn.execute(_FIND_LIVE, {**where, "since": self.clock() - TTL}).one_or_none()
        if found is not None:
            return _replay(key, request_print, *found)
        with self.uow.transaction() as conn:
            now = self.clock()
            if _claim(conn, where, request_print, now):
                response = call()
                conn.execute(update(Record).where(_is(where)).values(response=response))
                return Outcome(response, replayed=False)
            stored_print, stored = conn.execute(
                select(Record.fingerprint, Record.response).where(_is(where))
            ).one()
        return _replay(key, request_print, stored_print, stored)

    def purge(self) -> int:
        """Deletes records older than 24 hours; their keys are new again. In batches of
        PURGE_BATCH, each its own short transaction: however many have expired, no one
        statement runs long or holds locks for long."""
        purged = 0
        while True:
            with self.uow.transaction() as conn:
                expired = (
                    select(Record.entity_id, Record.mode, Record.method, Record.key)
                    .where(Record.create_time <= self.clock() - TTL)
                    .limit(PURGE_BATCH)
                )
                batch = conn.execute(
                    delete(Record).where(
                        tuple_(Record.entity_id, Record.mode, Record.method, Record.key).in_(
                            expired
                        )
                    )
                ).rowcount
            purged += batch
            if batch < PURGE_BATCH:
                return purged


def _replay(key: str, request_print: str, stored_print: str, stored: bytes | None) -> Outcome:
    if stored_print != request_print:
        raise key_reused(key)
    assert stored is not None, "a claim is committed only with its response"
    return Outcome(stored, replayed=True)


def _record(principal: Principal, method: str, key: str) -> dict[str, str]:
    tenant = principal.tenant
    return {"entity_id": tenant.entity_id, "mode": tenant.mode, "method": method, "key": key}


# Built once: a replay is the hot path of a retrying client.
_FIND_LIVE = select(Record.fingerprint, Record.response).where(
    (Record.entity_id == bindparam("entity_id"))
    & (Record.mode == bindparam("mode"))
    & (Record.method == bindparam("method"))
    & (Record.key == bindparam("key"))
    & (Record.create_time > bindparam("since", type_=UtcDateTime()))
)


def _is(where: dict[str, str]):  # type: ignore[no-untyped-def]
    return (
        (Record.entity_id == where["entity_id"])
        & (Record.mode == where["mode"])
        & (Record.method == where["method"])
        & (Record.key == where["key"])
    )


def _claim(conn: Connection, where: dict[str, str], request_print: str, now: datetime) -> bool:
    """Claims the key: a new record, or one in place of a record past its 24 hours.
    False when a live record holds it (after waiting for its transaction to end)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    new = dialect_insert(Record).values(
        **where, fingerprint=request_print, response=None, create_time=now
    )
    statement = new.on_conflict_do_update(
        index_elements=[Record.entity_id, Record.mode, Record.method, Record.key],
        set_={"fingerprint": request_print, "response": None, "create_time": now},
        where=Record.create_time <= now - TTL,
    ).returning(Record.key)
    return conn.execute(statement).first() is not None
