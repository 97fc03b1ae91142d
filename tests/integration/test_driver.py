"""Statements run on the driver's connection (db/driver.py) answer as SQLAlchemy would:
the same rows and types, errors in SQLAlchemy's terms (so failures.translate reads them),
a broken connection invalidated; and whatever listens to statements still sees them."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import BigInteger, bindparam, event, func, insert, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from service.db.driver import Prepared
from service.db.failures import translate
from service.db.models import Entity
from service.db.types import UtcDateTime
from service.errors import Unavailable

WHEN = datetime(2025, 6, 30, 23, 59, 59, 123456, tzinfo=UTC)
_ROW = select(
    bindparam("b_when", type_=UtcDateTime()).label("when"),
    literal("issue").label("action"),
    (bindparam("b_value", type_=BigInteger()) + 1).label("next"),
    func.coalesce(bindparam("b_none", type_=BigInteger()), 7).label("fallback"),
)
ROW = Prepared(_ROW)
_INSERT = insert(Entity).values(
    id=bindparam("b_id"), create_time=bindparam("b_when", type_=UtcDateTime()), time_zone="UTC"
)
INSERT = Prepared(_INSERT)


def test_rows_and_types_are_sqlalchemys(database):
    params = {"b_when": WHEN + timedelta(hours=2), "b_value": 41, "b_none": None}
    with database.connect() as conn:
        expected = [tuple(row) for row in conn.execute(_ROW, params)]
        got = ROW.rows(conn, params)
        assert ROW.row(conn, params) == got[0]
    assert got == expected
    when, action, following, fallback = got[0]
    assert (when, when.tzinfo, action, following, fallback) == (
        WHEN + timedelta(hours=2), UTC, "issue", 42, 7,
    )  # fmt: skip
    # On PostgreSQL the statement ran on the driver's connection (compiled for it once).
    assert (ROW._compiled is not None) == (database.dialect.name == "postgresql")


def test_a_statement_without_rows_returns_none_and_writes(database):
    with database.begin() as conn:
        assert INSERT.rows(conn, {"b_id": "driver-written", "b_when": WHEN}) == []
    with database.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM entities WHERE id = 'driver-written'"))
        assert found.scalar() == 1


def test_a_refused_statement_raises_sqlalchemys_error(database):
    with database.begin() as conn:
        INSERT.rows(conn, {"b_id": "twice", "b_when": WHEN})
    with pytest.raises(IntegrityError) as raised, database.begin() as conn:
        INSERT.rows(conn, {"b_id": "twice", "b_when": WHEN})
    assert not raised.value.connection_invalidated


def test_a_broken_connection_is_invalidated_and_unavailable(database, proof):
    if database.dialect.name != "postgresql":
        return  # in process: SQLite has no connection to lose (and takes SQLAlchemy's path)
    with database.connect() as conn:
        conn.execute(text("SELECT 1"))
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with database.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as raised:
            ROW.rows(conn, {"b_when": WHEN, "b_value": 1, "b_none": None})
        assert raised.value.connection_invalidated and conn.invalidated
        assert isinstance(translate(raised.value), Unavailable)
    with database.connect() as conn:  # the pool gives a working connection again
        assert ROW.row(conn, {"b_when": WHEN, "b_value": 1, "b_none": None}) is not None
    proof("a terminated backend: DBAPIError, connection invalidated, UNAVAILABLE; pool recovers")


def test_what_listens_to_statements_sees_them(database):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(database, "before_cursor_execute", record)
    try:
        with database.connect() as conn:
            got = ROW.rows(conn, {"b_when": WHEN, "b_value": 1, "b_none": 3})
    finally:
        event.remove(database, "before_cursor_execute", record)
    assert got[0][1:] == ("issue", 2, 3)
    assert [statement for statement in seen if "coalesce" in statement] == [seen[-1]]
