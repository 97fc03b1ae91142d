"""Counter series and periods: the format moves to counter_series, keyed by (counter_type,
series); counters keep one value per period. Every existing counter becomes series "",
period "", never resetting, its value and times kept; it is in use when it has issued.
Entities gain their fiscal year start and time zone; counter events name series, period
and reason.

Downgrading keeps only the never-resetting main-series counters: the first schema has no
place for the others.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.types import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counter types as this revision knows them, in their listing order.
COUNTER_TYPES = (
    "order", "invoice", "quote", "po", "rma", "journal", "account", "vendor_bill",
    "ap_payment", "check", "transfer", "vendor_return", "refund", "inventory_txn",
    "work_order", "fixed_asset", "lease", "lease_payment", "deposit", "vendor_credit",
    "payment_batch", "ar_advance",
)  # fmt: skip
_RANK = "CASE counter_type {} END".format(
    " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(COUNTER_TYPES, 1))
)


def upgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.add_column(
            sa.Column(
                "fiscal_year_start_month", sa.SmallInteger(), server_default=sa.text("1"),
                nullable=False,
            )
        )  # fmt: skip
        batch.add_column(
            sa.Column("time_zone", sa.String(64), server_default=sa.text("'UTC'"), nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_entities_fiscal_year_start_month"), "fiscal_year_start_month BETWEEN 1 AND 12"
        )
    op.create_table(
        "counter_series",
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(4), nullable=False),
        sa.Column("counter_type", sa.String(32), nullable=False),
        sa.Column("series", sa.String(40), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("suffix", sa.String(20), server_default="", nullable=False),
        sa.Column("padding", sa.Integer(), nullable=False),
        sa.Column("reset", sa.String(16), server_default="never", nullable=False),
        sa.Column("in_use", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_counter_series_entity_id_entities")
        ),
        sa.PrimaryKeyConstraint(
            "entity_id", "mode", "counter_type", "series", name=op.f("pk_counter_series")
        ),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f("ck_counter_series_mode")),
        sa.CheckConstraint("padding BETWEEN 1 AND 12", name=op.f("ck_counter_series_padding")),
        sa.CheckConstraint(
            "reset IN ('never', 'yearly', 'monthly', 'fiscal_yearly')",
            name=op.f("ck_counter_series_reset"),
        ),
    )
    op.execute(
        "INSERT INTO counter_series (entity_id, mode, counter_type, series, prefix, suffix, "
        "padding, reset, in_use, create_time, update_time) "
        "SELECT entity_id, mode, counter_type, '', prefix, '', padding, 'never', "
        "EXISTS (SELECT 1 FROM counter_events e WHERE e.entity_id = counters.entity_id "
        "AND e.mode = counters.mode AND e.counter_type = counters.counter_type "
        "AND e.action = 'issue'), create_time, update_time FROM counters"
    )
    with op.batch_alter_table("counters", recreate="always") as batch:
        batch.add_column(sa.Column("series", sa.String(40), server_default="", nullable=False))
        batch.add_column(sa.Column("period", sa.String(7), server_default="", nullable=False))
        batch.add_column(sa.Column("type_rank", sa.SmallInteger(), nullable=True))
    op.execute(f"UPDATE counters SET type_rank = {_RANK}")
    with op.batch_alter_table("counters", recreate="always") as batch:
        batch.alter_column("type_rank", existing_type=sa.SmallInteger(), nullable=False)
        batch.alter_column("series", server_default=None, existing_type=sa.String(40))
        batch.alter_column("period", server_default=None, existing_type=sa.String(7))
        batch.drop_constraint(op.f("ck_counters_padding"), type_="check")
        batch.drop_constraint(op.f("fk_counters_entity_id_entities"), type_="foreignkey")
        batch.drop_constraint(op.f("pk_counters"), type_="primary")
        batch.drop_column("prefix")
        batch.drop_column("padding")
        batch.create_primary_key(
            op.f("pk_counters"), ["entity_id", "mode", "counter_type", "series", "period"]
        )
        batch.create_foreign_key(
            op.f("fk_counters_entity_id_mode_counter_type_series_counter_series"),
            "counter_series",
            ["entity_id", "mode", "counter_type", "series"],
            ["entity_id", "mode", "counter_type", "series"],
        )
    op.create_index(
        op.f("ix_counters_entity_id_mode_type_rank_series_period"),
        "counters",
        ["entity_id", "mode", "type_rank", "series", "period"],
    )
    with op.batch_alter_table("counter_events") as batch:
        batch.add_column(sa.Column("series", sa.String(40), server_default="", nullable=False))
        batch.add_column(sa.Column("period", sa.String(7), server_default="", nullable=False))
        batch.add_column(sa.Column("reason", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("counter_events") as batch:
        batch.drop_column("reason")
        batch.drop_column("period")
        batch.drop_column("series")
    op.drop_index(op.f("ix_counters_entity_id_mode_type_rank_series_period"), "counters")
    op.execute("DELETE FROM counters WHERE series <> '' OR period <> ''")
    with op.batch_alter_table("counters", recreate="always") as batch:
        batch.add_column(sa.Column("prefix", sa.String(20), server_default="", nullable=False))
        batch.add_column(sa.Column("padding", sa.Integer(), server_default="7", nullable=False))
    op.execute(
        "UPDATE counters SET "
        "prefix = (SELECT s.prefix FROM counter_series s WHERE s.entity_id = counters.entity_id "
        "AND s.mode = counters.mode AND s.counter_type = counters.counter_type "
        "AND s.series = ''), "
        "padding = (SELECT s.padding FROM counter_series s WHERE s.entity_id = counters.entity_id "
        "AND s.mode = counters.mode AND s.counter_type = counters.counter_type AND s.series = '')"
    )
    with op.batch_alter_table("counters", recreate="always") as batch:
        batch.drop_constraint(
            op.f("fk_counters_entity_id_mode_counter_type_series_counter_series"),
            type_="foreignkey",
        )
        batch.drop_constraint(op.f("pk_counters"), type_="primary")
        batch.drop_column("type_rank")
        batch.drop_column("period")
        batch.drop_column("series")
        batch.alter_column("prefix", server_default=None, existing_type=sa.String(20))
        batch.alter_column("padding", server_default=None, existing_type=sa.Integer())
        batch.create_primary_key(op.f("pk_counters"), ["entity_id", "mode", "counter_type"])
        batch.create_foreign_key(
            op.f("fk_counters_entity_id_entities"), "entities", ["entity_id"], ["id"]
        )
        batch.create_check_constraint(op.f("ck_counters_padding"), "padding BETWEEN 1 AND 12")
    op.drop_table("counter_series")
    with op.batch_alter_table("entities") as batch:
        batch.drop_constraint(op.f("ck_entities_fiscal_year_start_month"), type_="check")
        batch.drop_column("time_zone")
        batch.drop_column("fiscal_year_start_month")
