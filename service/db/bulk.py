"""Many new rows of one tenant in one statement, whatever their number.

On PostgreSQL an executemany still runs one INSERT per row, each parsed, planned and
executed; here the rows travel as one JSON document, which PostgreSQL turns back into rows
of the table's own types (json_populate_recordset). SQLite runs in process, where an
executemany costs no round trips, so it keeps that.
"""

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, TextClause, insert, text

from service.auth.keys import Tenant
from service.db.tenancy import tenant_columns, tenant_params

_TENANT = ("entity_id", "mode")


def insert_rows(
    conn: Connection, table: Table, tenant: Tenant, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Inserts `rows` (every column of `table` but the tenant's) as the tenant's."""
    if not rows:
        return  # an executemany of nothing would insert one row of defaults
    statement, names = _from_json(table)
    if set(rows[0]) != names:  # a missing column would be NULL, not an error
        raise ValueError(f"rows of {table.name} need exactly the columns {sorted(names)}")
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), [{**tenant_columns(tenant), **row} for row in rows])
        return
    document = json.dumps(
        rows, default=_json_value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    conn.execute(statement, {**tenant_params(tenant), "b_rows": document})


@functools.cache
def _from_json(table: Table) -> tuple[TextClause, frozenset[str]]:
    names = [c.name for c in table.c if c.name not in _TENANT]
    statement = text(
        f"INSERT INTO {table.name} (entity_id, mode, {', '.join(names)}) "
        f"SELECT :b_entity_id, :b_mode, {', '.join(f'r.{name}' for name in names)} "
        f"FROM json_populate_recordset(NULL::{table.name}, CAST(:b_rows AS json)) AS r"
    )
    return statement, frozenset(names)


def _json_value(value: object) -> str:
    """Dates and time-zone-aware times as ISO 8601, which PostgreSQL reads exactly."""
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("a naive datetime has no instant to store")
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    raise TypeError(f"no JSON form for {type(value).__name__}")
