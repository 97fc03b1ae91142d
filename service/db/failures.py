"""Database failures in the domain's terms, and retrying what is worth retrying."""

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from service.db import watchdog
from service.errors import TransientConflict, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL: serialization_failure, deadlock_detected.
_CONFLICTS = {"40001", "40P01"}
# PostgreSQL: query_canceled (statement_timeout), lock_not_available (lock_timeout).
_TIMED_OUT = {"57014", "55P03"}
# PostgreSQL classes 08 (connection exception) and 57P (operator intervention: shutdown).
_GONE_PREFIXES = ("08", "57P")

ATTEMPTS = 5
FIRST_BACKOFF = 0.02  # seconds; doubles each time, with jitter


class RefusedByDatabase(Exception):
    """The database refused a statement for no rule of the domain's (a constraint or
    trigger it did not foresee, a malformed statement): a bug, INTERNAL to callers."""


def translate(error: DBAPIError) -> Exception:
    """TransientConflict, Unavailable, or RefusedByDatabase."""
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    if sqlstate in _CONFLICTS or "database is locked" in str(error.orig):
        return TransientConflict(
            "TRANSIENT_CONFLICT",
            "the database aborted the transaction to resolve a conflict with another; "
            "it was retried and still conflicts: try again",
            metadata={"sqlstate": sqlstate or "SQLITE_BUSY"},
        )
    if sqlstate in _TIMED_OUT:
        return Unavailable(
            "DATABASE_TIMEOUT",
            "the database did not finish in time (a lock held elsewhere, or overload): "
            "try again shortly",
            metadata={"sqlstate": sqlstate},
        )
    if _is_id_collision(error):
        return TransientConflict(
            "TRANSIENT_CONFLICT",
            "a new random key was already taken; it was retried and still collides: try again",
            metadata={"sqlstate": sqlstate or "SQLITE_CONSTRAINT_PRIMARYKEY"},
        )
    if (
        error.connection_invalidated
        or sqlstate.startswith(_GONE_PREFIXES)
        or (isinstance(error, (OperationalError, InterfaceError)) and not sqlstate)
    ):
        return Unavailable(
            "DATABASE_UNAVAILABLE", "the database cannot be reached just now: try again shortly"
        )
    return RefusedByDatabase(str(error.orig))


def _is_id_collision(error: DBAPIError) -> bool:
    """A new row's random key (db/ids.py) was taken: its primary key is violated."""
    if not isinstance(error, IntegrityError):
        return False
    diag = getattr(error.orig, "diag", None)  # psycopg
    if diag is not None:
        return bool((diag.constraint_name or "").startswith("pk_"))
    return bool(_SQLITE_ID_TAKEN.fullmatch(str(error.orig)))


_SQLITE_ID_TAKEN = re.compile(r"UNIQUE constraint failed: \w+\.id")


def retrying(attempt: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """`attempt()`, run again on a TransientConflict with jittered exponential backoff,
    at most ATTEMPTS times and never past the caller's deadline; then the TransientConflict
    goes to the caller (ABORTED)."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return attempt()
        except TransientConflict:
            pause = FIRST_BACKOFF * 2 ** (number - 1) * random.uniform(0.5, 1.5)
            remaining = watchdog.remaining()
            if number == ATTEMPTS or (remaining is not None and remaining < pause):
                raise
            log.info(
                "transient conflict, attempt %d of %d: retrying in %.3fs", number, ATTEMPTS, pause
            )
            sleep(pause)
    raise AssertionError("unreachable")
