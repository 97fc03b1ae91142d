"""Entities, API keys, counters and the counter audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.types import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entities")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(4), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("revoke_time", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_api_keys_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f("ck_api_keys_mode")),
    )
    op.create_table(
        "counters",
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(4), nullable=False),
        sa.Column("counter_type", sa.String(32), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("padding", sa.Integer(), nullable=False),
        sa.Column("current_value", sa.BigInteger(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_counters_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint("entity_id", "mode", "counter_type", name=op.f("pk_counters")),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f("ck_counters_mode")),
        sa.CheckConstraint("padding BETWEEN 1 AND 12", name=op.f("ck_counters_padding")),
        sa.CheckConstraint("current_value >= 0", name=op.f("ck_counters_current_value")),
    )
    op.create_table(
        "counter_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(4), nullable=False),
        sa.Column("counter_type", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("old_value", sa.BigInteger(), nullable=True),
        sa.Column("new_value", sa.BigInteger(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_counter_events_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counter_events")),
    )
    op.create_index(
        op.f("ix_counter_events_entity_id_mode_counter_type_id"),
        "counter_events",
        ["entity_id", "mode", "counter_type", "id"],
    )


def downgrade() -> None:
    op.drop_table("counter_events")
    op.drop_table("counters")
    op.drop_table("api_keys")
    op.drop_table("entities")
