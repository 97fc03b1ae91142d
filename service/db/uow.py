"""Unit of work: one transaction per use case, rolled back unless it completes."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from service.db.failures import translate


class _Ambient:
    """The transaction open in this thread of execution: a use case started inside
    another's transaction joins it (as a savepoint) instead of opening its own. That is
    how an idempotency record commits together with the effect it records."""

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine = engine
        self.conn = conn


_ambient: ContextVar[_Ambient | None] = ContextVar("ambient", default=None)


class UnitOfWork:
    """Hands out one connection in one transaction.

    `with uow.transaction() as conn:` commits when the block ends normally and rolls
    back when it raises, so a failed use case never writes anything. Inside another
    transaction of the same engine it is a savepoint: its failure undoes only itself,
    and its success commits with the enclosing transaction.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Connection]:
        """`read_only` declares that the block only reads: SQLite then starts a plain
        BEGIN instead of taking the write lock up front (see db/engine.py)."""
        current = _ambient.get()
        if current is not None and current.engine is self.engine:
            try:
                with current.conn.begin_nested():
                    yield current.conn
            except DBAPIError as error:
                raise translate(error) from error
            return
        try:
            with self.engine.connect() as conn:
                if read_only:
                    conn = conn.execution_options(read_only=True)
                with conn.begin():
                    token = _ambient.set(_Ambient(self.engine, conn))
                    try:
                        yield conn
                    finally:
                        _ambient.reset(token)
        except DBAPIError as error:
            # The one place that turns driver errors into the domain's: a conflict to
            # retry, an unreachable database, or (anything else) a bug.
            raise translate(error) from error

    @contextmanager
    def single_read(self) -> Iterator[Connection]:
        """A connection for one read statement. On PostgreSQL it runs outside any
        transaction (autocommit), sparing the BEGIN and COMMIT round trips: a single
        statement sees one consistent snapshot by itself. Inside an open transaction,
        it reads in that transaction."""
        if self.engine.dialect.name != "postgresql" or _ambient.get() is not None:
            with self.transaction(read_only=True) as conn:
                yield conn
            return
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as error:
            raise translate(error) from error
