"""Alembic owns the schema: migrations build exactly the models, and run both ways."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from service.db import models
from service.db.migrate import alembic_config, is_up_to_date, upgrade
from service.db.models import Base
from service.db.types import UtcDateTime


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
    ("table", "column", "value"),
    [
        ("counter_series", "padding", 0),
        ("counter_series", "padding", 13),
        ("counter_series", "reset", "weekly"),
        ("counter_series", "mode", "prod"),
        ("counters", "current_value", -1),
        ("counters", "mode", "prod"),
        ("counters", "series", "missing"),  # a value with no series, so no format
        ("entities", "fiscal_year_start_month", 13),
    ],
)
def test_the_schema_itself_refuses_impossible_counters(database, table, column, value):
    now = datetime.now(UTC)
    rows = {
        "entities": {"id": "acme", "create_time": now},
        "counter_series": {
            "entity_id": "acme", "mode": "live", "counter_type": "invoice", "series": "",
            "prefix": "I", "padding": 7, "create_time": now, "update_time": now,
        },
        "counters": {
            "entity_id": "acme", "mode": "live", "counter_type": "invoice", "series": "",
            "period": "", "type_rank": 2, "current_value": 0, "create_time": now,
            "update_time": now,
        },
    }  # fmt: skip
    tables = {
        "entities": models.Entity, "counter_series": models.CounterSeries,
        "counters": models.Counter,
    }  # fmt: skip
    with database.begin() as conn:
        for name, row in rows.items():
            if name == table:
                break
            conn.execute(insert(tables[name]).values(row))
    with pytest.raises(IntegrityError), database.begin() as conn:
        conn.execute(insert(tables[table]).values({**rows[table], column: value}))


def test_0006_carries_every_counter_over_as_the_main_series_never_resetting(database):
    """Counters written by the first schema (revision 0005) come through the upgrade
    whole: each becomes series "", period "", reset never; values, prefixes, padding and
    times kept; in use exactly when it had issued; its audit rows kept."""
    command.downgrade(alembic_config(database), "0005")
    made = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    moved = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    old_counters = sa.table(
        "counters", *(sa.column(n) for n in ("entity_id", "mode", "counter_type", "prefix",
        "padding", "current_value")), sa.column("create_time", UtcDateTime()),
        sa.column("update_time", UtcDateTime()),
    )  # fmt: skip
    old_events = sa.table(
        "counter_events", *(sa.column(n) for n in ("entity_id", "mode", "counter_type",
        "action", "old_value", "new_value")), sa.column("create_time", UtcDateTime()),
    )  # fmt: skip
    with database.begin() as conn:
        conn.execute(insert(models.Entity).values(id="acme", create_time=made))
        conn.execute(
            insert(old_counters),
            [
                dict(entity_id="acme", mode="live", counter_type="invoice", prefix="INV-",
                     padding=7, current_value=342666, create_time=made, update_time=moved),
                dict(entity_id="acme", mode="test", counter_type="po", prefix="PO",
                     padding=3, current_value=12, create_time=made, update_time=made),
                dict(entity_id="acme", mode="live", counter_type="ar_advance", prefix="",
                     padding=12, current_value=0, create_time=made, update_time=made),
            ],
        )  # fmt: skip
        conn.execute(
            insert(old_events),
            [
                dict(entity_id="acme", mode="live", counter_type="invoice", action="create",
                     old_value=None, new_value=342665, create_time=made),
                dict(entity_id="acme", mode="live", counter_type="invoice", action="issue",
                     old_value=342665, new_value=342666, create_time=moved),
                dict(entity_id="acme", mode="test", counter_type="po", action="create",
                     old_value=None, new_value=12, create_time=made),
            ],
        )  # fmt: skip
    upgrade(database)
    assert is_up_to_date(database)
    with database.connect() as conn:
        series = set(conn.execute(sa.text(
            "SELECT mode, counter_type, series, prefix, suffix, padding, reset, in_use "
            "FROM counter_series"
        )))  # fmt: skip
        values = set(conn.execute(sa.text(
            "SELECT mode, counter_type, series, period, type_rank, current_value FROM counters"
        )))  # fmt: skip
        times = set(conn.execute(select(models.Counter.create_time, models.Counter.update_time)))
        events = set(conn.execute(sa.text(
            "SELECT counter_type, series, period, action, old_value, new_value, reason "
            "FROM counter_events"
        )))  # fmt: skip
        entity = conn.execute(
            sa.text("SELECT fiscal_year_start_month, time_zone FROM entities")
        ).one()
    assert series == {
        ("live", "invoice", "", "INV-", "", 7, "never", True),
        ("test", "po", "", "PO", "", 3, "never", False),
        ("live", "ar_advance", "", "", "", 12, "never", False),
    }
    assert values == {
        ("live", "invoice", "", "", 2, 342666),
        ("test", "po", "", "", 4, 12),
        ("live", "ar_advance", "", "", 22, 0),
    }
    assert times == {(made, moved), (made, made)}
    assert events == {
        ("invoice", "", "", "create", None, 342665, ""),
        ("invoice", "", "", "issue", 342665, 342666, ""),
        ("po", "", "", "create", None, 12, ""),
    }
    assert tuple(entity) == (1, "UTC")


def test_0007_gives_every_event_a_key_and_every_issue_its_numbers(database):
    command.downgrade(alembic_config(database), "0006")
    made = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    old_events = sa.table(
        "counter_events", *(sa.column(n) for n in ("entity_id", "mode", "counter_type",
        "action", "old_value", "new_value")), sa.column("create_time", UtcDateTime()),
    )  # fmt: skip
    with database.begin() as conn:
        conn.execute(
            insert(old_events),
            [
                dict(entity_id="acme", mode="live", counter_type="invoice", action="create",
                     old_value=None, new_value=100, create_time=made),
                dict(entity_id="acme", mode="live", counter_type="invoice", action="issue",
                     old_value=100, new_value=103, create_time=made),
                dict(entity_id="acme", mode="live", counter_type="invoice", action="advance",
                     old_value=103, new_value=200, create_time=made),
            ],
        )  # fmt: skip
    upgrade(database)
    assert is_up_to_date(database)
    with database.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT action, first_value, last_value, event_key, idempotency_key "
                "FROM counter_events ORDER BY id"
            )
        ).all()
    assert [(a, f, la, i) for a, f, la, _, i in rows] == [
        ("create", None, None, None),
        ("issue", 101, 103, None),
        ("advance", None, None, None),
    ]
    keys = [row[3] for row in rows]
    assert len(set(keys)) == 3 and all(10**15 <= k < 2**53 for k in keys)
