"""Every use of a database connection ends by a deadline: the caller's, or the server's bound.

A connection is watched from checkout to checkin. Past its deadline the watchdog breaks the
wait: on PostgreSQL it shuts the connection's socket down (a stopped or unreachable server
answers no cancel request, and psycopg has no timeout of its own), so the waiting statement
fails at once and the pool discards the connection; on SQLite it interrupts the statement.
The call then fails with UNAVAILABLE instead of hanging for as long as the database is gone.

The deadline of the RPC being served is set by the interceptor (`bounded`); CLI commands,
the sweep and the health probe get the server's bound alone.
"""

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# How often the watchdog looks: a deadline is enforced within this much of passing.
RESOLUTION = 0.1  # seconds

# time.monotonic() by which the RPC being served must be answered; None when it has none.
_call_deadline: ContextVar[float | None] = ContextVar("call_deadline", default=None)


@contextlib.contextmanager
def bounded(deadline: float | None) -> Iterator[None]:
    """Database work inside the block ends by `deadline` (time.monotonic()), if sooner than
    the server's own bound."""
    token = _call_deadline.set(deadline)
    try:
        yield
    finally:
        _call_deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline of the RPC being served; None without one."""
    deadline = _call_deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class Interrupter:
    """Breaks a wait on one driver connection."""

    def __init__(self, interrupt: Callable[[], None], close: Callable[[], None] = lambda: None):
        self.interrupt, self.close = interrupt, close


def interrupter_for(dbapi_connection: object) -> Interrupter | None:
    """How to break a wait on this driver connection, or None if it cannot be broken."""
    interrupt = getattr(dbapi_connection, "interrupt", None)  # sqlite3
    if callable(interrupt):
        return Interrupter(interrupt)
    pgconn = getattr(dbapi_connection, "pgconn", None)  # psycopg
    if pgconn is None:
        return None
    # A duplicate of the socket's descriptor, ours alone: shutting it down reaches the
    # connection's socket even if the driver closed its own descriptor meanwhile, and can
    # never reach another socket that happened to reuse that number.
    duplicate = socket.socket(fileno=os.dup(pgconn.socket))

    def shut_down() -> None:
        with contextlib.suppress(OSError):
            duplicate.shutdown(socket.SHUT_RDWR)

    return Interrupter(shut_down, duplicate.close)


@dataclass(eq=False)
class _Watch:
    deadline: float
    interrupter: Interrupter
    callers: bool  # the deadline is the caller's (who has left), not the server's bound
    fired: bool = False


@dataclass
class Watchdog:
    """Enforces each checked-out connection's deadline: min(caller's, now + bound)."""

    bound: float  # seconds any one use of a connection may take
    monotonic: Callable[[], float] = time.monotonic
    _watches: dict[object, _Watch] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    fired: int = 0  # how many waits it has broken, for tests and metrics

    def watch(self, record: object, dbapi_connection: object) -> None:
        interrupter = interrupter_for(dbapi_connection)
        if interrupter is None:
            return
        bound = self.monotonic() + self.bound
        caller = _call_deadline.get()
        deadline = bound if caller is None else min(bound, caller)
        with self._lock:
            self._watches[record] = _Watch(deadline, interrupter, deadline != bound)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()

    def release(self, record: object) -> None:
        with self._lock:
            watch = self._watches.pop(record, None)
        if watch is not None:
            watch.interrupter.close()

    def _run(self) -> None:
        while True:
            time.sleep(RESOLUTION)
            now = self.monotonic()
            with self._lock:  # held while interrupting: a released watch is never fired
                for watch in self._watches.values():
                    if not watch.fired and now >= watch.deadline:
                        watch.fired = True
                        self.fired += 1
                        watch.interrupter.interrupt()
                        if watch.callers:
                            log.info("a database call outlived its caller's deadline: broken off")
                        else:
                            log.warning(
                                "a database call took longer than %gs: broken off", self.bound
                            )
