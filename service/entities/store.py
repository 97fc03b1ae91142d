"""Entity settings in the database."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, select, update
from sqlalchemy.dialects import postgresql

from service.db import models
from service.db.driver import Prepared
from service.db.uow import UnitOfWork
from service.db.upsert import upsert_into
from service.entities.settings import EntitySettings

# Every setting, in EntitySettings' order: other packages' statements may join them.
SETTINGS_COLUMNS = (
    models.Entity.ar_automatic_summaries,
    models.Entity.ar_account_labels,
    models.Entity.gl_closed_through,
    models.Entity.base_currency,
    models.Entity.fiscal_year_start_month,
    models.Entity.time_zone,
)


def _unchanged_cte() -> str:
    def typed(c: Any) -> str:  # text uncut: a cast to varchar(n) would cut it
        return "text" if isinstance(c.type, String) else c.type.compile(postgresql.dialect())

    conditions = " AND ".join(
        f"{c.key} IS NOT DISTINCT FROM CAST(:b_setting_{c.key} AS {typed(c)})"
        for c in SETTINGS_COLUMNS
    )
    return (
        f"settings_unchanged AS (SELECT 1 FROM entities WHERE id = :b_entity_id AND {conditions})"
    )


# A CTE of one row while the entity's settings are still those given by
# settings_unchanged_params, of none once they changed (PostgreSQL): a statement that acts
# on settings read earlier (a cache of them) writes only with it, so it is as if it read
# them itself.
SETTINGS_UNCHANGED_CTE = _unchanged_cte()


def settings_unchanged_params(settings: EntitySettings) -> dict[str, object]:
    # (EntitySettings' fields are named as the columns; dataclasses.astuple deep-copies.)
    return {f"b_setting_{c.key}": getattr(settings, c.key) for c in SETTINGS_COLUMNS}


_GET = Prepared(select(*SETTINGS_COLUMNS).where(models.Entity.id == bindparam("b_id")))


def ensure_entity(conn: Connection, entity_id: str, now: datetime) -> None:
    """The entity's row, made if it has none (its settings then take their defaults)."""
    conn.execute(
        upsert_into(conn, models.Entity)
        .values(id=entity_id, create_time=now)
        .on_conflict_do_nothing(index_elements=["id"])
    )


def load_settings(conn: Connection, entity_id: str) -> EntitySettings:
    """The entity's settings (the defaults if it has no row yet)."""
    row = _GET.row(conn, {"b_id": entity_id})
    return EntitySettings() if row is None else settings_from(row)


def settings_from(columns: Sequence[Any]) -> EntitySettings:
    """The settings of SETTINGS_COLUMNS' values."""
    return EntitySettings(*columns)


class EntityStore:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def configure(self, entity_id: str, **changes: object) -> EntitySettings:
        """Sets the given settings (creating the entity if needed) and returns them all."""

        def configure(conn: Connection) -> EntitySettings:
            ensure_entity(conn, entity_id, datetime.now(UTC))
            if changes:
                conn.execute(
                    update(models.Entity).where(models.Entity.id == entity_id).values(**changes)
                )
            return load_settings(conn, entity_id)

        return self.uow.run(configure)

    def settings(self, entity_id: str) -> EntitySettings:
        return self.uow.run(lambda conn: load_settings(conn, entity_id), read_only=True)
