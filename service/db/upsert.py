"""INSERT ... ON CONFLICT, which PostgreSQL and SQLite both have, each in its own dialect."""

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def upsert_into(conn: Connection, table: Any) -> Any:
    """An INSERT into `table` for this connection's database, with on_conflict_do_nothing
    and on_conflict_do_update (the two dialects spell them alike)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
