"""The schema rule that lets the service shard by entity (SCALING.md, stage 4).

Every table is a tenant table, distributed on `entity_id`, unless GLOBAL_TABLES lists it
with the reason. A tenant table

- has the column `entity_id`;
- has a primary key, and `entity_id` is part of it and of every unique constraint and
  unique index: a sharded database enforces uniqueness only within a shard (Citus refuses
  to distribute a table with a primary key or unique constraint without its distribution
  column);
- maps `entity_id` to the other table's `entity_id` in each of its foreign keys to another
  tenant table: both rows then live on one shard, where the key can be checked (Citus
  refuses a foreign key between distributed tables without it).

A foreign key from a tenant table to a global one is fine (Citus: distributed to reference
table); a global table never references a tenant table (reference to distributed: refused).

Checked on the models and on the schema the migrations build, on SQLite and PostgreSQL;
and the check itself is shown to catch each kind of violation, in metadata and in a real
database.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pytest
from sqlalchemy import (
    Column,
    Connection,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    inspect,
)

from service.db.models import Base

TENANT = "entity_id"  # the distribution column of every tenant table

# The tables that hold no tenant's data, or must be read before the tenant is known. On
# Citus each is a reference table (a full copy on every node, written with two-phase
# commit): small, rarely written, read or joined locally from any shard.
GLOBAL_TABLES = {
    # The tenants themselves (id is the entity), with their settings: joined to counters
    # and read by advances, written only by `keys create` and `entities configure`.
    "entities": "the tenants and their settings",
    # A call's key is looked up by its hash before anyone knows whose it is; a key holds no
    # entity in its text. Written only by the admin CLI (create, revoke).
    "api_keys": "looked up by hash before the tenant is known",
    # Secrets every replica shares (the page-token signing key), made on first start.
    "service_secrets": "service-wide secrets",
}
# Only in a migrated database: Alembic's own bookkeeping (a local table on Citus's
# coordinator, where migrations run).
ALEMBIC_TABLES = {"alembic_version": "Alembic's revision"}

# Violations of the rule the schema has today, each to be removed by the migration that
# SCALING.md ("What a migration must change") describes: the four tables keyed by a random
# `id` alone. Not exceptions: the tables are tenant tables, and everything else about them
# is checked. The test fails on any violation not listed here, and on any listed one that
# is gone (remove it from the list then), so the list only ever shrinks.
PENDING_MIGRATION = frozenset(
    {
        "advance_applications: primary key (id) without entity_id",
        "advance_applications: foreign key (advance_id) -> advances (id) between tenant "
        "tables does not map entity_id to advances.entity_id",
        "advance_lines: primary key (id) without entity_id",
        "advance_lines: unique (advance_id, line_number) without entity_id",
        "advance_lines: foreign key (advance_id) -> advances (id) between tenant tables "
        "does not map entity_id to advances.entity_id",
        "advances: primary key (id) without entity_id",
        "counter_events: primary key (id) without entity_id",
    }
)


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str
    referred: tuple[str, ...]

    def __str__(self) -> str:
        return f"{_columns(self.columns)} -> {self.table} {_columns(self.referred)}"


@dataclass(frozen=True)
class Shape:
    """What the rule looks at in a table."""

    columns: frozenset[str]
    primary_key: tuple[str, ...]
    unique: frozenset[tuple[str, ...]]  # unique constraints and unique indexes alike
    foreign_keys: tuple[ForeignKey, ...]


def _columns(names: Collection[str | None]) -> str:
    return "(" + ", ".join(str(name) for name in names) + ")"


def shapes_of_metadata(metadata: MetaData) -> dict[str, Shape]:
    shapes = {}
    for table in metadata.sorted_tables:
        unique = {
            tuple(column.name for column in constraint.columns)
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
        }
        unique |= {tuple(c.name for c in index.columns) for index in table.indexes if index.unique}
        shapes[table.name] = Shape(
            columns=frozenset(table.columns.keys()),
            primary_key=tuple(column.name for column in table.primary_key.columns),
            unique=frozenset(unique),
            foreign_keys=tuple(
                ForeignKey(
                    tuple(constraint.column_keys),
                    constraint.referred_table.name,
                    tuple(element.column.name for element in constraint.elements),
                )
                for constraint in table.foreign_key_constraints
            ),
        )
    return shapes


def shapes_of_database(conn: Connection, only: Collection[str] | None = None) -> dict[str, Shape]:
    """The tables of the database `conn` is connected to (those of `only`), as reflected."""
    inspector = inspect(conn)
    shapes = {}
    for name in inspector.get_table_names():
        if only is not None and name not in only:
            continue
        unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)}
        unique |= {
            tuple(str(c) for c in index["column_names"])  # None for an expression
            for index in inspector.get_indexes(name)
            if index["unique"]
        }
        shapes[name] = Shape(
            columns=frozenset(column["name"] for column in inspector.get_columns(name)),
            primary_key=tuple(inspector.get_pk_constraint(name)["constrained_columns"]),
            unique=frozenset(unique),
            foreign_keys=tuple(
                ForeignKey(
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
        )
    return shapes


def violations(shapes: Mapping[str, Shape], global_tables: Collection[str]) -> set[str]:
    """Every way the tables break the rule, each said in one line naming the table."""
    found = {
        f"{name}: listed as global, but there is no such table"
        for name in set(global_tables) - set(shapes)
    }
    for name, shape in shapes.items():
        if name in global_tables:
            found |= {
                f"{name}: a global table with a foreign key {fk} to a tenant table"
                for fk in shape.foreign_keys
                if fk.table not in global_tables
            }
            continue
        if TENANT not in shape.columns:
            found.add(
                f"{name}: no {TENANT} column: a tenant table needs it (a truly global table "
                "goes in GLOBAL_TABLES, with the reason)"
            )
            continue
        if not shape.primary_key:
            found.add(f"{name}: no primary key (it must include {TENANT})")
        elif TENANT not in shape.primary_key:
            found.add(f"{name}: primary key {_columns(shape.primary_key)} without {TENANT}")
        found |= {
            f"{name}: unique {_columns(columns)} without {TENANT}"
            for columns in shape.unique
            if TENANT not in columns
        }
        for fk in shape.foreign_keys:
            maps_tenant = TENANT in fk.columns and fk.referred[fk.columns.index(TENANT)] == TENANT
            if fk.table not in global_tables and not maps_tenant:
                found.add(
                    f"{name}: foreign key {fk} between tenant tables does not map {TENANT} "
                    f"to {fk.table}.{TENANT}"
                )
    return found


def assert_rule_holds(found: set[str], where: str) -> None:
    new = sorted(found - PENDING_MIGRATION)
    gone = sorted(PENDING_MIGRATION - found)
    assert not new, f"{where} breaks the sharding rule (SCALING.md, stage 4):\n" + "\n".join(new)
    assert not gone, (
        f"{where}: fixed, so remove from PENDING_MIGRATION (and from SCALING.md):\n"
        + "\n".join(gone)
    )


def test_the_models_keep_the_sharding_rule(proof):
    shapes = shapes_of_metadata(Base.metadata)
    assert_rule_holds(violations(shapes, GLOBAL_TABLES), "service/db/models.py")
    tenant = sorted(set(shapes) - set(GLOBAL_TABLES))
    proof(
        f"{len(tenant)} tenant tables ({', '.join(tenant)}) keyed by {TENANT} but for "
        f"{len(PENDING_MIGRATION)} known violations; global: {', '.join(sorted(GLOBAL_TABLES))}"
    )


def test_the_migrated_schema_keeps_the_sharding_rule(database):
    """What Alembic built (after upgrade(), on SQLite and PostgreSQL), not only what the
    models say."""
    with database.connect() as conn:
        shapes = shapes_of_database(conn)
    assert set(shapes) == set(Base.metadata.tables) | set(ALEMBIC_TABLES)
    found = violations(shapes, {**GLOBAL_TABLES, **ALEMBIC_TABLES})
    assert_rule_holds(found, f"the schema migrated on {database.dialect.name}")


# The check itself catches each kind of violation: scratch tables, never the real ones.
def _scratch() -> MetaData:
    scratch = MetaData()
    Table("scratch_registry", scratch, Column("id", String(64), primary_key=True))
    Table(  # a correct tenant table
        "scratch_orders",
        scratch,
        Column(TENANT, String(64), primary_key=True),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("number", String(20)),
        Column("registry_id", String(64)),
        UniqueConstraint(TENANT, "number"),
        ForeignKeyConstraint(["registry_id"], ["scratch_registry.id"]),  # to a global table
    )
    Table(  # a correct child: its foreign key maps the tenant
        "scratch_order_lines",
        scratch,
        Column(TENANT, String(64), primary_key=True),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("order_id", Integer),
        ForeignKeyConstraint(
            [TENANT, "order_id"], ["scratch_orders.entity_id", "scratch_orders.id"]
        ),
    )
    return scratch


SCRATCH_GLOBAL = {"scratch_registry"}


def _broken(scratch: MetaData) -> set[str]:
    """Adds a table of each kind of violation to `scratch`; what the check must say."""
    Table("scratch_widgets", scratch, Column("id", Integer, primary_key=True))
    Table(  # keyed by a random id alone, as four real tables are today
        "scratch_legacy",
        scratch,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column(TENANT, String(64)),
    )
    Table(
        "scratch_notes",
        scratch,
        Column(TENANT, String(64), primary_key=True),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("code", String(20)),
        Column("slug", String(10)),
        UniqueConstraint("code"),
        Index("ix_scratch_notes_slug", "slug", unique=True),
        # The tenant is in it, but matched with another column.
        ForeignKeyConstraint(
            [TENANT, "code"], ["scratch_orders.number", "scratch_orders.entity_id"]
        ),
    )
    Table(
        "scratch_audit",
        scratch,
        Column(TENANT, String(64), primary_key=True),
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("legacy_id", Integer),
        ForeignKeyConstraint(["legacy_id"], ["scratch_legacy.id"]),
    )
    Table("scratch_log", scratch, Column(TENANT, String(64)), Column("line", String(80)))
    Table(
        "scratch_settings",
        scratch,
        Column("name", String(20), primary_key=True),
        Column("order_tenant", String(64)),
        Column("order_id", Integer),
        ForeignKeyConstraint(
            ["order_tenant", "order_id"], ["scratch_orders.entity_id", "scratch_orders.id"]
        ),
    )
    return {
        "scratch_widgets: no entity_id column: a tenant table needs it (a truly global table "
        "goes in GLOBAL_TABLES, with the reason)",
        "scratch_legacy: primary key (id) without entity_id",
        "scratch_log: no primary key (it must include entity_id)",
        "scratch_notes: unique (code) without entity_id",
        "scratch_notes: unique (slug) without entity_id",
        "scratch_notes: foreign key (entity_id, code) -> scratch_orders (number, entity_id) "
        "between tenant tables does not map entity_id to scratch_orders.entity_id",
        "scratch_audit: foreign key (legacy_id) -> scratch_legacy (id) between tenant tables "
        "does not map entity_id to scratch_legacy.entity_id",
        "scratch_settings: a global table with a foreign key (order_tenant, order_id) -> "
        "scratch_orders (entity_id, id) to a tenant table",
    }


def test_the_check_passes_tables_that_keep_the_rule():
    assert violations(shapes_of_metadata(_scratch()), SCRATCH_GLOBAL) == set()


def test_the_check_names_each_table_and_what_it_lacks():
    scratch = _scratch()
    expected = _broken(scratch)
    found = violations(shapes_of_metadata(scratch), SCRATCH_GLOBAL | {"scratch_settings"})
    assert found == expected
    assert violations(shapes_of_metadata(scratch), {"scratch_settings", "scratch_gone"}) >= {
        "scratch_gone: listed as global, but there is no such table",
        "scratch_registry: no entity_id column: a tenant table needs it (a truly global "
        "table goes in GLOBAL_TABLES, with the reason)",
    }


def test_a_new_table_without_its_tenant_fails_the_models_check():
    """The real models plus one new table that forgot its tenant: the rule's test fails,
    naming it."""
    scratch = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(scratch)
    Table(
        "attachments",
        scratch,
        Column("id", Integer, primary_key=True),
        Column("advance_id", Integer),
        ForeignKeyConstraint(["advance_id"], ["advances.id"]),
    )
    found = violations(shapes_of_metadata(scratch), GLOBAL_TABLES)
    with pytest.raises(
        AssertionError, match=r"breaks the sharding rule.*\n\s*attachments: no entity_id column"
    ):
        assert_rule_holds(found, "models with a new table")


def test_the_check_catches_the_same_in_a_migrated_database(database):
    """The reflected schema says what the metadata says: the broken scratch tables, made
    inside a transaction on the migrated test database (SQLite, PostgreSQL) that is then
    rolled back, are each caught."""
    scratch = _scratch()
    expected = _broken(scratch)
    with database.connect() as conn, conn.begin() as transaction:
        scratch.create_all(conn)
        shapes = shapes_of_database(conn, only=scratch.tables)
        transaction.rollback()
    with database.connect() as conn:
        assert not set(inspect(conn).get_table_names()) & set(scratch.tables)  # none left
    assert set(shapes) == set(scratch.tables)
    assert violations(shapes, SCRATCH_GLOBAL | {"scratch_settings"}) == expected
