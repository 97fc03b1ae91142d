"""Applications as records of their own (several per invoice, unapplied ones kept), with
their tenant; a table for the secrets replicas share (the key that signs page tokens,
made on first use).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.types import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("advance_applications") as batch:  # SQLite rebuilds the table
        batch.add_column(sa.Column("entity_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("mode", sa.String(length=4), nullable=True))
        batch.add_column(sa.Column("applied_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unapply_time", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("unapplied_by", sa.Integer(), nullable=True))
        batch.drop_constraint(
            op.f("uq_advance_applications_advance_id_invoice_number"), type_="unique"
        )
    # Each existing application stays one record, with its advance's tenant. (One that
    # merged several applications to an invoice under the old rule stays merged.)
    op.execute(
        "UPDATE advance_applications SET "
        "entity_id = (SELECT entity_id FROM advances WHERE advances.id = advance_id), "
        "mode = (SELECT mode FROM advances WHERE advances.id = advance_id)"
    )
    with op.batch_alter_table("advance_applications") as batch:
        batch.alter_column("entity_id", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("mode", existing_type=sa.String(length=4), nullable=False)
        batch.create_check_constraint(
            op.f("ck_advance_applications_mode"), "mode IN ('live', 'test')"
        )
        batch.create_foreign_key(
            op.f("fk_advance_applications_applied_by_api_keys"), "api_keys", ["applied_by"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_advance_applications_unapplied_by_api_keys"),
            "api_keys",
            ["unapplied_by"],
            ["id"],
        )
        batch.create_index(op.f("ix_advance_applications_advance_id"), ["advance_id"])
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
    # The old rule: one application per invoice. Unapplied ones go; several to one invoice
    # merge into the first, dated by the last.
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM advance_applications WHERE unapply_time IS NOT NULL"))
    groups = conn.execute(
        sa.text(
            "SELECT advance_id, invoice_number, min(id), sum(amount), sum(base_amount), "
            "max(applied_date) FROM advance_applications GROUP BY advance_id, invoice_number "
            "HAVING count(*) > 1"
        )
    ).all()
    for advance_id, invoice, first, amount, base_amount, applied_date in groups:
        conn.execute(
            sa.text(
                "DELETE FROM advance_applications WHERE advance_id = :a AND "
                "invoice_number = :i AND id <> :first"
            ),
            {"a": advance_id, "i": invoice, "first": first},
        )
        conn.execute(
            sa.text(
                "UPDATE advance_applications SET amount = :amount, base_amount = :base, "
                "applied_date = :day WHERE id = :first"
            ),
            {"amount": amount, "base": base_amount, "day": applied_date, "first": first},
        )
    with op.batch_alter_table("advance_applications") as batch:
        batch.drop_index(op.f("ix_advance_applications_advance_id"))
        batch.drop_constraint(
            op.f("fk_advance_applications_unapplied_by_api_keys"), type_="foreignkey"
        )
        batch.drop_constraint(
            op.f("fk_advance_applications_applied_by_api_keys"), type_="foreignkey"
        )
        batch.drop_constraint(op.f("ck_advance_applications_mode"), type_="check")
        for column in ("unapplied_by", "unapply_time", "applied_by", "mode", "entity_id"):
            batch.drop_column(column)
        batch.create_unique_constraint(
            op.f("uq_advance_applications_advance_id_invoice_number"),
            ["advance_id", "invoice_number"],
        )
