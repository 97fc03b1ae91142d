"""Configuration from environment variables."""

import os
from dataclasses import dataclass

from service.db.engine import default_database_url


@dataclass(frozen=True)
class Settings:
    database_url: str
    listen: str
    max_workers: int
    # How often the server purges idempotency records past their 24 hours.
    idempotency_sweep_seconds: float
    # True when DATABASE_URL is unset: the embedded SQLite file under ./var.
    embedded: bool

    @classmethod
    def from_env(cls) -> "Settings":
        url = os.environ.get("DATABASE_URL", "")
        return cls(
            database_url=url or default_database_url(),
            listen=os.environ.get("GRPC_LISTEN", "127.0.0.1:50051"),
            max_workers=int(os.environ.get("GRPC_MAX_WORKERS", "32")),
            idempotency_sweep_seconds=float(os.environ.get("IDEMPOTENCY_SWEEP_SECONDS", "600")),
            embedded=not url,
        )
