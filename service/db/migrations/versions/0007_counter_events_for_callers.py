"""Counter events for callers (ListCounterEvents, VoidNumbers): a random event_key to show
instead of the shared sequence, the numbers an issue or a void covers, the idempotency key
of the call; existing events get theirs (an issue covers old_value + 1..new_value).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# service/db/ids.py's range: 16 digits, below 2**53.
_RANDOM_KEY = {
    "postgresql": "1000000000000000 + floor(random() * 8007199254740991)::bigint",
    "sqlite": "1000000000000000 + abs(random() % 8007199254740991)",
}


def upgrade() -> None:
    with op.batch_alter_table("counter_events") as batch:
        batch.add_column(sa.Column("event_key", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("first_value", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_value", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(255), nullable=True))
    op.execute(f"UPDATE counter_events SET event_key = {_RANDOM_KEY[op.get_bind().dialect.name]}")
    op.execute(
        "UPDATE counter_events SET first_value = old_value + 1, last_value = new_value "
        "WHERE action = 'issue'"
    )
    with op.batch_alter_table("counter_events") as batch:
        batch.alter_column("event_key", existing_type=sa.BigInteger(), nullable=False)
    op.create_index(
        op.f("ix_counter_events_entity_id_mode_id"), "counter_events", ["entity_id", "mode", "id"]
    )
    op.create_index(
        op.f("ix_counter_events_entity_id_mode_counter_type_series_period_first_value"),
        "counter_events",
        ["entity_id", "mode", "counter_type", "series", "period", "first_value"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_counter_events_entity_id_mode_counter_type_series_period_first_value"),
        "counter_events",
    )
    op.drop_index(op.f("ix_counter_events_entity_id_mode_id"), "counter_events")
    op.execute("DELETE FROM counter_events WHERE action = 'void'")
    with op.batch_alter_table("counter_events") as batch:
        batch.drop_column("idempotency_key")
        batch.drop_column("last_value")
        batch.drop_column("first_value")
        batch.drop_column("event_key")
