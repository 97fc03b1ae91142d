"""Alembic environment: the engine comes from service.db.migrate, never from an ini file."""

from alembic import context
from sqlalchemy import Connection, text

from service.db.models import Base

engine = context.config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"


def foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite heeds this pragma only outside a transaction: set on the driver's connection,
    before SQLAlchemy begins one."""
    driver = connection.connection.dbapi_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.execute(text("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    connection.commit()


with engine.connect() as connection:
    if not sqlite:
        migrate(connection)
    else:
        # SQLite rebuilds a table to alter it (render_as_batch): dropping the old copy of
        # a table others refer to must not trip their foreign keys, which are checked
        # again before the migration commits.
        foreign_keys(connection, on=False)
        try:
            migrate(connection)
        finally:
            foreign_keys(connection, on=True)
