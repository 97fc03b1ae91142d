"""db/bulk.insert_rows: many rows in one statement (one JSON document on PostgreSQL, an
executemany on SQLite), read back exactly as written, the columns' own checks intact."""

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
