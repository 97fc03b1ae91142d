"""Unit of work: one transaction per use case, rolled back unless it completes."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, Engine

# The transaction open in this thread of execution, if any: a use case started inside
# another's transaction joins it (as a savepoint) instead of opening its own. That is
# how an idempotency record commits together with the effect it records.
_ambient: ContextVar[tuple[Engine, Connection] | None] = ContextVar("ambient", default=None)


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
        if current is not None and current[0] is self.engine:
            with current[1].begin_nested():
                yield current[1]
            return
        with self.engine.connect() as conn:
            if read_only:
                conn = conn.execution_options(read_only=True)
            with conn.begin():
                token = _ambient.set((self.engine, conn))
                try:
                    yield conn
                finally:
                    _ambient.reset(token)
