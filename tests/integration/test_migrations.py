"""Alembic owns the schema: migrations build exactly the models, and run both ways."""

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from service.db import models
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


@pytest.mark.parametrize(
    ("column", "value"), [("padding", 0), ("padding", 13), ("current_value", -1), ("mode", "prod")]
)
def test_the_schema_itself_refuses_impossible_counters(database, column, value):
    now = datetime.now(UTC)
    row = {
        "entity_id": "acme", "mode": "live", "counter_type": "invoice", "prefix": "I",
        "padding": 7, "current_value": 0, "create_time": now, "update_time": now,
    }  # fmt: skip
    with database.begin() as conn:
        conn.execute(insert(models.Entity).values(id="acme", create_time=now))
    with pytest.raises(IntegrityError), database.begin() as conn:
        conn.execute(insert(models.Counter).values({**row, column: value}))
