"""API keys and entities in the database."""

from datetime import UTC, datetime

from sqlalchemy import Connection, Row, bindparam, func, insert, literal, select, update

from service.auth.keys import (
    ApiKeyRecord,
    generate_key,
    hash_key,
    key_hint,
)
from service.db import models
from service.db.ids import new_key_id
from service.db.types import UtcDateTime
from service.db.uow import UnitOfWork
from service.entities.store import ensure_entity
from service.errors import NotFound

_KEY_COLUMNS = (
    models.ApiKey.id,
    models.ApiKey.hint,
    models.ApiKey.entity_id,
    models.ApiKey.mode,
    models.ApiKey.scopes,
    models.ApiKey.create_time,
    models.ApiKey.revoke_time,
)


_FIND = select(*_KEY_COLUMNS).where(models.ApiKey.key_hash == bindparam("key_hash"))


def _record(row: Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id,
        row.hint,
        row.entity_id,
        row.mode,
        tuple(row.scopes.split()),
        row.create_time,
        row.revoke_time,
    )


class KeyStore:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def create(
        self, entity_id: str, mode: str, scopes: list[str], key: str | None = None
    ) -> tuple[ApiKeyRecord, str]:
        """Stores a new key (or `key`, made by generate_key) and returns it with its
        plaintext, which is never stored."""
        key = key or generate_key(mode)
        now = datetime.now(UTC)
        statement = (
            insert(models.ApiKey)
            .values(
                id=new_key_id(),
                key_hash=hash_key(key),
                hint=key_hint(key),
                entity_id=entity_id,
                mode=mode,
                scopes=" ".join(sorted(set(scopes))),
                create_time=now,
            )
            .returning(*_KEY_COLUMNS)
        )

        def create(conn: Connection) -> Row:
            ensure_entity(conn, entity_id, now)
            return conn.execute(statement).one()

        return _record(self.uow.run(create)), key

    def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        row = self.uow.read(lambda conn: conn.execute(_FIND, {"key_hash": key_hash}).one_or_none())
        return None if row is None else _record(row)

    def list_keys(self, entity_id: str | None = None) -> list[ApiKeyRecord]:
        query = select(*_KEY_COLUMNS).order_by(models.ApiKey.id)
        if entity_id is not None:
            query = query.where(models.ApiKey.entity_id == entity_id)
        rows = self.uow.run(lambda conn: conn.execute(query).all(), read_only=True)
        return [_record(row) for row in rows]

    def revoke(self, key_id: int) -> ApiKeyRecord:
        """Revokes a key; revoking a revoked key keeps its first revoke time."""
        now = datetime.now(UTC)
        statement = (
            update(models.ApiKey)
            .where(models.ApiKey.id == key_id)
            .values(
                revoke_time=func.coalesce(models.ApiKey.revoke_time, literal(now, UtcDateTime()))
            )
            .returning(*_KEY_COLUMNS)
        )
        row = self.uow.run(lambda conn: conn.execute(statement).one_or_none())
        if row is None:
            raise NotFound("API_KEY_NOT_FOUND", f"no API key with id {key_id}")
        return _record(row)

    def count(self) -> int:
        statement = select(func.count()).select_from(models.ApiKey)
        count: int = self.uow.run(lambda conn: conn.execute(statement).scalar_one(), read_only=True)
        return count
