"""Alembic owns the schema: migrations build exactly the models, and run both ways."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from service.db.migrate import alembic_config, is_up_to_date, upgrade
from service.db.models import Base


def test_migrations_match_the_models(database):
    assert is_up_to_date(database)
    with database.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_downgrade_to_nothing_and_up_again(database):
    command.downgrade(alembic_config(database), "base")
    assert not is_up_to_date(database)
    upgrade(database)
    assert is_up_to_date(database)
