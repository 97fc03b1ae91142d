"""db/bulk.insert_rows: many rows in one statement (one JSON document on PostgreSQL, an
executemany on SQLite), read back exactly as written, the columns' own checks intact."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import DBAPIError

from service.auth.keys import Tenant
from service.db import models
from service.db.bulk import insert_rows
from service.db.ids import LARGEST, new_ids
from tests.advances import Client

LINES = cast(Table, models.AdvanceLine.__table__)
APPLICATIONS = cast(Table, models.AdvanceApplication.__table__)
TRICKY = ['Zürich — 東京 "quoted" \\ back', "tab\tand\nnewline", "", "'; DROP TABLE x; --"]


def line_rows(advance_id: int, count: int) -> list[dict]:
    return [
        {
            "id": key,
            "advance_id": advance_id,
            "line_number": n + 2,  # after the advance's own line 1
            "gl_account_id": TRICKY[n % 4],
            "gl_account_name": "x" * 200,
            "account_label_id": "",
            "account_label_name": TRICKY[(n + 1) % 4],
            "txn_amount": LARGEST if n == 0 else n,
            "base_amount": -n,
            "memo": TRICKY[(n + 2) % 4] * 50,
            "dimensions": {"location": {"id": "CA", "name": TRICKY[n % 4]}} if n % 2 else {},
        }
        for n, key in enumerate(new_ids(count))
    ]


@pytest.fixture
def advance_id(channel, key) -> int:
    return int(Client(channel, key).create().key)


def test_rows_read_back_as_written(database, advance_id):
    rows = line_rows(advance_id, 40)
    with database.begin() as conn:
        insert_rows(conn, LINES, Tenant("acme", "live"), rows)
    with database.connect() as conn:
        found = conn.execute(
            select(LINES).where(LINES.c.id.in_([r["id"] for r in rows])).order_by(LINES.c.id)
        ).mappings()
        stored = [dict(row) for row in found]
    expected = sorted(
        ({**r, "entity_id": "acme", "mode": "live"} for r in rows), key=lambda r: r["id"]
    )
    assert stored == expected


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_value_too_long_for_its_column_is_refused_not_cut(database, advance_id):
    rows = line_rows(advance_id, 3)
    rows[2]["gl_account_name"] = "x" * 201
    with pytest.raises(DBAPIError, match="too long"), database.begin() as conn:
        insert_rows(conn, LINES, Tenant("acme", "live"), rows)
    with database.connect() as conn:
        assert conn.execute(select(LINES.c.id).where(LINES.c.id == rows[0]["id"])).first() is None


def test_rows_must_name_every_column(database, advance_id):
    rows = line_rows(advance_id, 2)
    for row in rows:
        del row["memo"]  # would be NULL, silently
    with pytest.raises(ValueError, match="memo"), database.begin() as conn:
        insert_rows(conn, LINES, Tenant("acme", "live"), rows)


def test_rows_must_name_their_columns_in_one_order(database, advance_id):
    first, second = line_rows(advance_id, 2)
    reordered = dict(reversed(list(second.items())))  # same columns, values elsewhere
    with pytest.raises(ValueError, match="columns"), database.begin() as conn:
        insert_rows(conn, LINES, Tenant("acme", "live"), [first, reordered])


def application_row(advance_id: int, applied: datetime) -> dict:
    return {
        "id": new_ids(1)[0],
        "advance_id": advance_id,
        "invoice_number": "INV-1",
        "amount": 100,
        "base_amount": 100,
        "applied_date": date(2024, 6, 13),
        "create_time": applied,
        "applied_by": None,
        "unapply_time": None,
        "unapplied_by": None,
    }


def test_dates_and_times_read_back_as_the_same_instant(database, advance_id):
    applied = datetime(2024, 6, 13, 23, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-7)))
    row = application_row(advance_id, applied)
    with database.begin() as conn:
        insert_rows(conn, APPLICATIONS, Tenant("acme", "live"), [row])
    with database.connect() as conn:
        stored = conn.execute(select(APPLICATIONS).where(APPLICATIONS.c.id == row["id"])).one()
    assert stored.create_time == applied and stored.create_time.tzinfo == UTC
    assert stored.applied_date == date(2024, 6, 13)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_time_without_a_zone_is_refused(database, advance_id):
    row = application_row(advance_id, datetime(2024, 6, 13, 12, 0))  # which instant?
    with pytest.raises(TypeError) as refused, database.begin() as conn:
        insert_rows(conn, APPLICATIONS, Tenant("acme", "live"), [row])
    assert "naive datetime" in str(refused.value.__cause__)  # the JSON encoder's, from ours
