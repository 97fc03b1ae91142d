"""The schema. Alembic owns it (see migrations/); these models describe it to SQLAlchemy.

Every tenant-owned row is keyed by (entity_id, mode): live and test keys of one
entity see disjoint data.
"""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.db.types import UtcDateTime

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
    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)


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


class Counter(Base):
    """The database refuses what the domain never writes: the last line of defence."""

    __tablename__ = "counters"
    __table_args__ = (
        CheckConstraint("mode IN ('live', 'test')", name="mode"),
        CheckConstraint("padding BETWEEN 1 AND 12", name="padding"),
        CheckConstraint("current_value >= 0", name="current_value"),
    )

    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(4), primary_key=True)
    counter_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20))
    padding: Mapped[int]
    current_value: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class CounterEvent(Base):
    """Audit trail: one row per change to a counter."""

    __tablename__ = "counter_events"
    __table_args__ = (Index(None, "entity_id", "mode", "counter_type", "id"),)

    # BigInteger on PostgreSQL; INTEGER on SQLite so that it stays the rowid alias.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    entity_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(4))
    counter_type: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # "create", "advance" or "issue"
    old_value: Mapped[int | None] = mapped_column(BigInteger)
    new_value: Mapped[int] = mapped_column(BigInteger)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
