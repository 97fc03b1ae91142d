"""Advances, their lines and applications; entity settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.types import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "advances",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=4), nullable=False),
        sa.Column("advance_number", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("reference_number", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("payment_date", sa.Date(), nullable=False),
        sa.Column("receipt_date", sa.Date(), nullable=False),
        sa.Column("payment_method", sa.String(length=20), nullable=False),
        sa.Column("financial_entity_id", sa.String(length=100), nullable=False),
        sa.Column("base_currency", sa.String(length=3), nullable=False),
        sa.Column("txn_currency", sa.String(length=3), nullable=False),
        sa.Column("exchange_rate", sa.String(length=24), nullable=False),
        sa.Column("exchange_rate_date", sa.Date(), nullable=True),
        sa.Column("exchange_rate_type_id", sa.String(length=100), nullable=False),
        sa.Column("advance_summary_id", sa.String(length=100), nullable=False),
        sa.Column("gl_account_id", sa.String(length=100), nullable=False),
        sa.Column("undeposited_gl_account_number", sa.String(length=100), nullable=False),
        sa.Column("attachment_id", sa.String(length=100), nullable=False),
        sa.Column("total_entered", sa.BigInteger(), nullable=False),
        sa.Column("txn_total_entered", sa.BigInteger(), nullable=False),
        sa.Column("total_paid", sa.BigInteger(), nullable=False),
        sa.Column("txn_total_paid", sa.BigInteger(), nullable=False),
        sa.Column("ever_applied", sa.Boolean(), nullable=False),
        sa.Column("reversed_date", sa.Date(), nullable=True),
        sa.Column("reversal_memo", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("modified_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f("ck_advances_mode")),
        sa.CheckConstraint(
            "state IN ('draft', 'posted', 'partially_applied', 'fully_applied', 'reversed')",
            name=op.f("ck_advances_state"),
        ),
        sa.CheckConstraint(
            "0 <= total_paid AND total_paid <= total_entered "
            "AND 0 <= txn_total_paid AND txn_total_paid <= txn_total_entered",
            name=op.f("ck_advances_paid_within_entered"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["api_keys.id"], name=op.f("fk_advances_created_by_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_advances_entity_id_entities")
        ),
        sa.ForeignKeyConstraint(
            ["modified_by"], ["api_keys.id"], name=op.f("fk_advances_modified_by_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advances")),
        sa.UniqueConstraint(
            "entity_id",
            "mode",
            "advance_number",
            name=op.f("uq_advances_entity_id_mode_advance_number"),
        ),
        sqlite_autoincrement=True,  # a deleted key is never handed out again
    )
    op.create_index(
        op.f("ix_advances_entity_id_mode_customer_id_id"),
        "advances",
        ["entity_id", "mode", "customer_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_advances_entity_id_mode_id"), "advances", ["entity_id", "mode", "id"], unique=False
    )
    op.create_index(
        op.f("ix_advances_entity_id_mode_state_id"),
        "advances",
        ["entity_id", "mode", "state", "id"],
        unique=False,
    )
    op.create_table(
        "advance_applications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "advance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("invoice_number", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("base_amount", sa.BigInteger(), nullable=False),
        sa.Column("applied_date", sa.Date(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "amount > 0 AND base_amount >= 0", name=op.f("ck_advance_applications_amounts")
        ),
        sa.ForeignKeyConstraint(
            ["advance_id"],
            ["advances.id"],
            name=op.f("fk_advance_applications_advance_id_advances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advance_applications")),
        sa.UniqueConstraint(
            "advance_id",
            "invoice_number",
            name=op.f("uq_advance_applications_advance_id_invoice_number"),
        ),
    )
    op.create_table(
        "advance_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "advance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("gl_account_id", sa.String(length=100), nullable=False),
        sa.Column("gl_account_name", sa.String(length=200), nullable=False),
        sa.Column("account_label_id", sa.String(length=100), nullable=False),
        sa.Column("account_label_name", sa.String(length=200), nullable=False),
        sa.Column("txn_amount", sa.BigInteger(), nullable=False),
        sa.Column("base_amount", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("dimensions", sa.JSON(), nullable=False),
        sa.CheckConstraint("txn_amount > 0", name=op.f("ck_advance_lines_txn_amount")),
        sa.ForeignKeyConstraint(
            ["advance_id"],
            ["advances.id"],
            name=op.f("fk_advance_lines_advance_id_advances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advance_lines")),
        sa.UniqueConstraint(
            "advance_id", "line_number", name=op.f("uq_advance_lines_advance_id_line_number")
        ),
        sqlite_autoincrement=True,  # a deleted key is never handed out again
    )
    op.add_column(
        "entities",
        sa.Column(
            "ar_automatic_summaries", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.add_column(
        "entities",
        sa.Column(
            "ar_account_labels", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.add_column("entities", sa.Column("gl_closed_through", sa.Date(), nullable=True))
    op.add_column(
        "entities",
        sa.Column(
            "base_currency", sa.String(length=3), server_default=sa.text("'USD'"), nullable=False
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("entities") as batch:  # SQLite rebuilds the table
        for column in (
            "base_currency",
            "gl_closed_through",
            "ar_account_labels",
            "ar_automatic_summaries",
        ):
            batch.drop_column(column)
    op.drop_table("advance_lines")
    op.drop_table("advance_applications")
    op.drop_index(op.f("ix_advances_entity_id_mode_state_id"), table_name="advances")
    op.drop_index(op.f("ix_advances_entity_id_mode_id"), table_name="advances")
    op.drop_index(op.f("ix_advances_entity_id_mode_customer_id_id"), table_name="advances")
    op.drop_table("advances")
