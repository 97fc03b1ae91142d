"""Advance lines carry their tenant, as every tenant table does: every statement on them
names it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("advance_lines") as batch:  # SQLite rebuilds the table
        batch.add_column(sa.Column("entity_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(length=4), nullable=True))
    op.execute(
        "UPDATE advance_lines SET "
        "entity_id = (SELECT entity_id FROM advances WHERE advances.id = advance_id), "
        "mode = (SELECT mode FROM advances WHERE advances.id = advance_id)"
    )
    with op.batch_alter_table("advance_lines") as batch:
        batch.alter_column("entity_id", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("mode", existing_type=sa.String(length=4), nullable=False)
        batch.create_check_constraint(op.f("ck_advance_lines_mode"), "mode IN ('live', 'test')")


def downgrade() -> None:
    with op.batch_alter_table("advance_lines") as batch:
        batch.drop_constraint(op.f("ck_advance_lines_mode"), type_="check")
        batch.drop_column("mode")
        batch.drop_column("entity_id")
