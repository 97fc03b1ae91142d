"""Secrets every replica of the service shares, kept in the database.

A secret is made on first use: the first server to start inserts a random one, and every
replica reads whichever insert won.
"""

import os

from sqlalchemy import Connection, select

from service.db.models import ServiceSecret
from service.db.uow import UnitOfWork
from service.db.upsert import upsert_into

PAGE_TOKENS = "page_tokens"
SECRET_BYTES = 32


def load_secret(uow: UnitOfWork, name: str) -> bytes:
    def load(conn: Connection) -> bytes:
        conn.execute(
            upsert_into(conn, ServiceSecret)
            .values(name=name, value=os.urandom(SECRET_BYTES))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = conn.execute(select(ServiceSecret.value).where(ServiceSecret.name == name))
        return bytes(value.scalar_one())

    return uow.run(load)
