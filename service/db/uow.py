"""Unit of work: one transaction per use case, committed only when it completes, and run
again when the database gave up on it to resolve a conflict.

    uow.run(lambda conn: ...)       the work in a transaction of its own, retried whole on a
                                    transient conflict; inside another unit it joins that one
    uow.read(lambda conn: ...)      one read statement (autocommit on PostgreSQL)
    uow.statement(lambda conn: ...) one statement that writes (autocommit on PostgreSQL)
    uow.undoable(lambda conn: ...)  work undone whole if it raises (savepoint inside a unit)
    with uow.savepoint() as conn:   nested work that may fail alone
    uow.after_commit(callback)      called once the outermost transaction has committed

Joining is how an idempotency record commits together with the effect it records: the
record's unit is the outermost, and the use case run inside it becomes part of it. Whoever
opens the outermost unit (an RPC, a CLI command, the sweep) gets the retry.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from service.db.failures import retrying, translate

T = TypeVar("T")


@dataclass
class _Unit:
    """The transaction open in this thread of execution, and what waits for its commit."""

    engine: Engine
    conn: Connection
    after_commit: list[Callable[[], None]] = field(default_factory=list)


_current: ContextVar[_Unit | None] = ContextVar("unit_of_work", default=None)


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _joined(self) -> _Unit | None:
        unit = _current.get()
        return unit if unit is not None and unit.engine is self.engine else None

    def run(self, work: Callable[[Connection], T], read_only: bool = False) -> T:
        """`work(conn)` in one transaction: committed when it returns, rolled back when it
        raises. The outermost unit runs it again on a transient conflict (a serialization
        failure, a deadlock, a busy SQLite), with jittered backoff, a few times at most;
        inside another unit of the same engine it simply joins that one.

        `read_only` declares that the work only reads: SQLite then starts a plain BEGIN
        instead of taking the write lock up front (see db/engine.py)."""
        unit = self._joined()
        if unit is not None:
            return work(unit.conn)
        return retrying(lambda: self._once(work, read_only))

    def _once(self, work: Callable[[Connection], T], read_only: bool) -> T:
        try:
            with self.engine.connect() as conn:
                if read_only:
                    conn = conn.execution_options(read_only=True)
                unit = _Unit(self.engine, conn)
                with conn.begin():
                    token = _current.set(unit)
                    try:
                        result = work(conn)
                    finally:
                        _current.reset(token)
        except DBAPIError as error:
            # The one place that turns driver errors into the domain's: a conflict to
            # retry, an unreachable database, or (anything else) a bug.
            raise translate(error) from error
        for callback in unit.after_commit:
            callback()
        return result

    def read(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` that runs one read statement. On PostgreSQL it runs outside any
        transaction (autocommit), sparing the BEGIN and COMMIT round trips: a single
        statement sees one consistent snapshot by itself. Inside a unit, it reads there."""
        if not self.statements_commit_alone or self._joined() is not None:
            return self.run(work, read_only=True)
        return self._alone(work)

    def _alone(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` outside any transaction (autocommit)."""
        try:
            with self.engine.connect() as conn:
                return work(conn.execution_options(isolation_level="AUTOCOMMIT"))
        except DBAPIError as error:
            raise translate(error) from error

    @property
    def statements_commit_alone(self) -> bool:
        """Whether `statement` runs outside a transaction here (PostgreSQL), so that work
        written as one statement is worth choosing over several."""
        return self.engine.dialect.name == "postgresql"

    def statement(self, work: Callable[[Connection], T], undoable: bool = False) -> T:
        """`work(conn)` whose writes are one statement, atomic by itself (it may read
        after it, e.g. to build the answer). On PostgreSQL it runs outside any transaction
        (autocommit): no BEGIN or COMMIT round trip, and a row it locks is released as
        soon as the statement ends. Retried on a transient conflict, which leaves nothing
        written. Inside a unit, it joins it (`undoable`: in a savepoint, so that a
        statement the database refused leaves the unit usable); elsewhere, a transaction
        of its own."""
        if not self.statements_commit_alone or self._joined() is not None:
            return self.undoable(work) if undoable else self.run(work)
        return retrying(lambda: self._alone(work))

    def undoable(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` that leaves nothing behind when it raises. Inside a unit, in a
        savepoint; otherwise in a transaction of its own (as `run`), which undoes it as
        well without the SAVEPOINT and RELEASE round trips."""
        if self._joined() is None:
            return self.run(work)
        with self.savepoint() as conn:
            return work(conn)

    @contextmanager
    def savepoint(self) -> Iterator[Connection]:
        """Nested work that may fail alone, inside a unit: when the block raises, what it
        wrote is undone and the enclosing unit goes on."""
        unit = self._joined()
        if unit is None:
            raise RuntimeError("a savepoint needs a unit of work around it")
        pending = len(unit.after_commit)
        try:
            with unit.conn.begin_nested():
                yield unit.conn
        except BaseException as error:
            del unit.after_commit[pending:]  # what it did is undone: nothing to report
            if isinstance(error, DBAPIError):
                raise translate(error) from error
            raise

    def begin_shared(self) -> "SharedUnit":
        """A transaction that several threads' units join in turn (db/coalesce.py): it is
        committed or rolled back by its owner, never retried."""
        try:
            conn = self.engine.connect()
            try:
                return SharedUnit(_Unit(self.engine, conn), conn.begin())
            except BaseException:
                conn.close()
                raise
        except DBAPIError as error:
            raise translate(error) from error

    def after_commit(self, callback: Callable[[], None]) -> None:
        """`callback()` once the outermost transaction has committed; never if it rolls
        back or is run again. Outside a unit, at once."""
        unit = self._joined()
        if unit is None:
            callback()
        else:
            unit.after_commit.append(callback)


class SharedUnit:
    """One transaction whose units of work, in whichever thread, join it while `joined`."""

    def __init__(self, unit: _Unit, transaction: RootTransaction) -> None:
        self._unit = unit
        self._transaction = transaction

    @contextmanager
    def joined(self) -> Iterator[None]:
        """In this thread, units of work of the engine join this transaction."""
        token = _current.set(self._unit)
        try:
            yield
        finally:
            _current.reset(token)

    def commit(self) -> None:
        """Commits, then runs what waited for it; errors in the domain's terms."""
        try:
            self._transaction.commit()
        except DBAPIError as error:
            raise translate(error) from error
        for callback in self._unit.after_commit:
            callback()

    def rollback(self) -> None:
        with suppress(DBAPIError):  # the connection is closed next; a broken one is discarded
            self._transaction.rollback()

    def close(self) -> None:
        self._unit.conn.close()
