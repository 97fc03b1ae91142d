"""The statements most calls are made of, run on the driver's connection.

SQLAlchemy spends about 250 µs of CPU around each statement on PostgreSQL (its execution
context, parameter processing, result metadata built from the cursor's description), two
to three times what psycopg spends on the statement itself; on AdvanceCounter, IssueNumbers
and CreateAdvance that was a fifth to a third of the service's CPU (BENCHMARKS.md, issue
17). A Prepared statement is compiled once, by SQLAlchemy, for the connection's dialect; on
PostgreSQL it then runs with psycopg on the very connection the unit of work holds (its
transaction, its watchdog, autocommit or not), and its rows get SQLAlchemy's result
processing (UTC times). A driver error comes back as SQLAlchemy's DBAPIError, which
failures.translate reads, and a connection it broke is invalidated, as SQLAlchemy does.

Whatever listens to statements still hears of each one (before_cursor_execute and
after_cursor_execute, with a context that carries the compiled statement, as the tests'
check of every statement reads it); and while tracing records the calling RPC, its
statements go through SQLAlchemy, whose events its SQL spans are made of (errors
included). SQLite runs in process: SQLAlchemy's path, always.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import ExecStatus
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled

from service.tracing import statements_traced

TUPLES_OK = ExecStatus.TUPLES_OK


class Prepared:
    """One statement (no expanding IN parameters), compiled once."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: _Compiled | None = None

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        if conn.dialect.name != "postgresql" or statements_traced():
            through = conn.execute(self.statement, dict(params))
            return [tuple(row) for row in through] if through.returns_rows else []
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _Compiled(self.statement, conn.dialect)
        values = compiled.values(params)
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        heard = conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute
        context = _Context(compiled.compiled) if heard else None
        if heard:
            conn.dispatch.before_cursor_execute(conn, None, compiled.sql, values, context, False)
        try:
            cursor = driver.execute(compiled.sql, values)
            # (Not cursor.description, which builds an object per column.)
            result = cursor.pgresult
            fetched = cursor.fetchall() if result and result.status == TUPLES_OK else []
        except psycopg.Error as error:
            gone = driver.broken or driver.closed
            if gone:
                conn.invalidate(error)
            raise DBAPIError.instance(
                compiled.sql, values, error, psycopg.Error, connection_invalidated=gone
            ) from error
        if heard:
            conn.dispatch.after_cursor_execute(conn, cursor, compiled.sql, values, context, False)
        return compiled.processed(fetched)

    def row(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The statement's one row, if any."""
        rows = self.rows(conn, params)
        if len(rows) > 1:
            raise AssertionError(f"one row at most expected, got {len(rows)}")
        return rows[0] if rows else None


@dataclass(frozen=True)
class Ctes:
    """CTEs one package lends another's statement, their parameters, and an expression
    over them whose `{placeholder}` the borrower fills in."""

    sql: str
    params: Mapping[str, Any]
    expression: str = ""


class _Context:
    """What a statement listener may read of an execution context: the compiled form."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled


class _Compiled:
    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = self.compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql = str(compiled)
        # Literal values the statement carries (e.g. literal("issue")), and every bind's
        # default, which a call's parameters override.
        self.defaults = dict(compiled.params)
        self.binds: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)
        self.results: list[Callable[[Any], Any] | None] = [
            column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns
        ]
        self.converts = any(process is not None for process in self.results)

    def values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = {**self.defaults, **params}
        for name, process in self.binds.items():
            if name in values:
                values[name] = process(values[name])
        return values

    def processed(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if not self.converts:
            return rows
        processors = self.results
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, processors, strict=True)
            )
            for row in rows
        ]
