"""The schema. Alembic owns it (see migrations/); these models describe it to SQLAlchemy.

Every tenant-owned row is keyed by (entity_id, mode): live and test keys of one
entity see disjoint data.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.db.types import UtcDateTime

# BigInteger on PostgreSQL; INTEGER on SQLite, where only that is the rowid alias.
ID = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Entity(Base):
    """A tenant, with its accounting settings (see service/entities/settings.py)."""

    __tablename__ = "entities"
    __table_args__ = (
        CheckConstraint("fiscal_year_start_month BETWEEN 1 AND 12", name="fiscal_year_start_month"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    ar_automatic_summaries: Mapped[bool] = mapped_column(Boolean, server_default=false())
    ar_account_labels: Mapped[bool] = mapped_column(Boolean, server_default=false())
    gl_closed_through: Mapped[date | None] = mapped_column(Date)
    base_currency: Mapped[str] = mapped_column(String(3), server_default=text("'USD'"))
    # Where fiscal years start (1..12), and the IANA zone whose date is "today".
    fiscal_year_start_month: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    time_zone: Mapped[str] = mapped_column(String(64), server_default=text("'UTC'"))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("mode IN ('live', 'test')", name="mode"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # Hex SHA-256 of the whole key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters and last four, to recognise it in `keys list`.
    hint: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    mode: Mapped[str] = mapped_column(String(4))  # "live" or "test"
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    revoke_time: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CounterSeries(Base):
    """The format of a (counter_type, series): how its numbers are written, and when its
    periods start again."""

    __tablename__ = "counter_series"
    __table_args__ = (
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
        CheckConstraint("padding BETWEEN 1 AND 12", name="padding"),
        CheckConstraint("reset IN ('never', 'yearly', 'monthly', 'fiscal_yearly')", name="reset"),
    )

    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(4), primary_key=True)
    counter_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    series: Mapped[str] = mapped_column(String(40), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20))
    suffix: Mapped[str] = mapped_column(String(20), server_default="")
    padding: Mapped[int]
    reset: Mapped[str] = mapped_column(String(16), server_default="never")
    # Once IssueNumbers has issued from the series its reset is fixed (COUNTER_IN_USE).
    in_use: Mapped[bool] = mapped_column(Boolean, server_default=false())
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class Counter(Base):
    """One period's value of a series. The database refuses what the domain never writes:
    the last line of defence."""

    __tablename__ = "counters"
    __table_args__ = (
        ForeignKeyConstraint(
            ["entity_id", "mode", "counter_type", "series"],
            [
                "counter_series.entity_id",
                "counter_series.mode",
                "counter_series.counter_type",
                "counter_series.series",
            ],
        ),
        # Listings run in counter-type order (type_rank), then series and period.
        Index(None, "entity_id", "mode", "type_rank", "series", "period"),
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
        CheckConstraint("current_value >= 0", name="current_value"),
    )

    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(4), primary_key=True)
    counter_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    series: Mapped[str] = mapped_column(String(40), primary_key=True)
    # "" for a counter that never resets; "2025", "2025-06" or "FY2025".
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    type_rank: Mapped[int] = mapped_column(SmallInteger)
    current_value: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class CounterEvent(Base):
    """Audit trail: one row per change to a counter. `id` orders them and never leaves the
    service; `event_key`, random, is what callers see."""

    __tablename__ = "counter_events"
    __table_args__ = (
        Index(None, "entity_id", "mode", "counter_type", "id"),
        Index(None, "entity_id", "mode", "id"),
        # The issues and voids whose numbers lie near a value (VoidNumbers' checks).
        Index(None, "entity_id", "mode", "counter_type", "series", "period", "first_value"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    event_key: Mapped[int] = mapped_column(BigInteger)
    entity_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(4))
    counter_type: Mapped[str] = mapped_column(String(32))
    series: Mapped[str] = mapped_column(String(40), server_default="")
    period: Mapped[str] = mapped_column(String(7), server_default="")
    action: Mapped[str] = mapped_column(String(16))  # create, advance, issue, void, update
    old_value: Mapped[int | None] = mapped_column(BigInteger)
    new_value: Mapped[int] = mapped_column(BigInteger)
    # The numbers an issue or a void covers.
    first_value: Mapped[int | None] = mapped_column(BigInteger)
    last_value: Mapped[int | None] = mapped_column(BigInteger)
    # Why, in words: a void's reason, what an update changed.
    reason: Mapped[str] = mapped_column(Text, server_default="")
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)


class Advance(Base):
    """An AR advance; its amounts are integer cents, kept in step with its lines."""

    __tablename__ = "advances"
    __table_args__ = (
        UniqueConstraint("entity_id", "mode", "advance_number"),
        Index(None, "entity_id", "mode", "id"),
        Index(None, "entity_id", "mode", "customer_id", "id"),
        Index(None, "entity_id", "mode", "state", "id"),
        # ListAdvances' lookups: by reference number, by payment date.
        Index(None, "entity_id", "mode", "reference_number", "id"),
        Index(None, "entity_id", "mode", "payment_date", "id"),
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
        CheckConstraint(
            "state IN ('draft', 'posted', 'partially_applied', 'fully_applied', 'reversed')",
            name="state",
        ),
        CheckConstraint(
            "0 <= total_paid AND total_paid <= total_entered "
            "AND 0 <= txn_total_paid AND txn_total_paid <= txn_total_entered",
            name="paid_within_entered",
        ),
        {"sqlite_autoincrement": True},  # a deleted key is never handed out again
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    mode: Mapped[str] = mapped_column(String(4))
    advance_number: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(100))
    customer_name: Mapped[str] = mapped_column(String(200))
    reference_number: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    payment_date: Mapped[date] = mapped_column(Date)
    receipt_date: Mapped[date] = mapped_column(Date)
    payment_method: Mapped[str] = mapped_column(String(20))
    financial_entity_id: Mapped[str] = mapped_column(String(100))
    base_currency: Mapped[str] = mapped_column(String(3))
    txn_currency: Mapped[str] = mapped_column(String(3))
    exchange_rate: Mapped[str] = mapped_column(String(24))  # exact decimal text
    exchange_rate_date: Mapped[date | None] = mapped_column(Date)
    exchange_rate_type_id: Mapped[str] = mapped_column(String(100))
    advance_summary_id: Mapped[str] = mapped_column(String(100))
    gl_account_id: Mapped[str] = mapped_column(String(100))
    undeposited_gl_account_number: Mapped[str] = mapped_column(String(100))
    attachment_id: Mapped[str] = mapped_column(String(100))
    total_entered: Mapped[int] = mapped_column(BigInteger)
    txn_total_entered: Mapped[int] = mapped_column(BigInteger)
    total_paid: Mapped[int] = mapped_column(BigInteger)
    txn_total_paid: Mapped[int] = mapped_column(BigInteger)
    # Once applied, an advance can never be updated or deleted again, even if unapplied.
    ever_applied: Mapped[bool] = mapped_column(Boolean)
    reversed_date: Mapped[date | None] = mapped_column(Date)
    reversal_memo: Mapped[str] = mapped_column(Text)
    version: Mapped[int]  # the etag is made from it
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    modified_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))


class AdvanceLine(Base):
    __tablename__ = "advance_lines"
    __table_args__ = (
        UniqueConstraint("advance_id", "line_number"),
        CheckConstraint("txn_amount > 0", name="txn_amount"),
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    # The tenant again, so that every statement on this table names it.
    entity_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(4))
    advance_id: Mapped[int] = mapped_column(ForeignKey("advances.id", ondelete="CASCADE"))
    line_number: Mapped[int]
    gl_account_id: Mapped[str] = mapped_column(String(100))
    gl_account_name: Mapped[str] = mapped_column(String(200))
    account_label_id: Mapped[str] = mapped_column(String(100))
    account_label_name: Mapped[str] = mapped_column(String(200))
    txn_amount: Mapped[int] = mapped_column(BigInteger)
    base_amount: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(Text)
    # {"location": {"id": "CA", "name": ""}, "department": {...}, ...}
    dimensions: Mapped[dict[str, Any]] = mapped_column(JSON)


class AdvanceApplication(Base):
    """One application of an advance to an invoice, with its own date. Unapplying marks
    it (unapply_time) rather than deleting it: the advance's history stays whole."""

    __tablename__ = "advance_applications"
    __table_args__ = (
        Index(None, "advance_id"),
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
        CheckConstraint("amount > 0 AND base_amount >= 0", name="amounts"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    # The tenant again, so that every statement on this table names it.
    entity_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(4))
    advance_id: Mapped[int] = mapped_column(ForeignKey("advances.id", ondelete="CASCADE"))
    invoice_number: Mapped[str] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)  # transaction currency
    base_amount: Mapped[int] = mapped_column(BigInteger)
    applied_date: Mapped[date] = mapped_column(Date)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)  # when it was applied
    applied_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    unapply_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unapplied_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))


class ServiceSecret(Base):
    """Secrets every replica shares, made on first use (the key that signs page tokens)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotencyRecord(Base):
    """A mutating call made with an idempotency key, and its response, for 24 hours."""

    __tablename__ = "idempotency_records"
    __table_args__ = (Index(None, "create_time"),)

    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(4), primary_key=True)
    method: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method and the deterministically serialized request.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The serialized response; NULL only inside the claiming transaction.
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
