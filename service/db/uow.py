"""Unit of work: one transaction per use case, rolled back unless committed."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


class UnitOfWork:
    """Hands out one connection in one transaction.

    `with uow.transaction() as conn:` commits when the block ends normally and
    rolls back when it raises, so a failed use case never writes anything.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Connection]:
        """`read_only` declares that the block only reads: SQLite then starts a plain
        BEGIN instead of taking the write lock up front (see db/engine.py)."""
        with self.engine.connect() as conn:
            if read_only:
                conn = conn.execution_options(read_only=True)
            with conn.begin():
                yield conn
