"""Indexes for finding advances by reference number and by payment date (ListAdvances'
filters). Finding one by number uses the unique (entity, mode, advance_number) index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_advances_entity_id_mode_reference_number_id": ["reference_number", "id"],
    "ix_advances_entity_id_mode_payment_date_id": ["payment_date", "id"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(op.f(name), "advances", ["entity_id", "mode", *columns])


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(op.f(name), "advances")
