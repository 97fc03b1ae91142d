"""The common calls take the round trips BENCHMARKS.md counts (issue 17), through a real
server on both backends; and AdvanceCounter's one statement decides exactly as the general
path does, on every combination of values that matters."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count

import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text
from sqlalchemy.engine.default import DefaultExecutionContext

from service import errors
from service.auth.keys import Principal, Tenant
from service.auth.store import KeyStore
from service.counters.domain import AdvanceRequest, AdvanceResult
from service.counters.service import Counters
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from tests.support import auth


@dataclass
class Trips:
    """What reached the database: statements (with whether each ran outside a
    transaction, and whether on the driver's connection past SQLAlchemy's execution,
    db/driver.py), transactions begun and committed, savepoints."""

    statements: list[tuple[str, bool, bool]] = field(default_factory=list)
    begun: int = 0
    committed: int = 0
    savepoints: int = 0

    def clear(self) -> None:
        self.statements.clear()
        self.begun = self.committed = self.savepoints = 0


@pytest.fixture
def trips(database: Engine) -> Iterator[Trips]:
    seen = Trips()

    def statement(conn, cursor, sql, parameters, context, executemany):
        alone = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        driver = not isinstance(context, DefaultExecutionContext)
        seen.statements.append((sql.split(None, 1)[0], alone, driver))

    def begun(conn):
        seen.begun += 1

    def committed(conn):
        seen.committed += 1

    def savepoint(conn, name):
        seen.savepoints += 1

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("begin", begun),
        ("commit", committed),
        ("savepoint", savepoint),
    ]
    for name, hook in hooks:
        event.listen(database, name, hook)
    yield seen
    for name, hook in hooks:
        event.remove(database, name, hook)


def test_an_advance_of_an_existing_counter_is_one_statement_on_postgresql(
    database, counters, key, trips
):
    def advance(to: int) -> cpb.AdvanceCounterResponse:
        return counters.AdvanceCounter(
            cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=to,
                                      prefix="INV-", padding=7),
            metadata=auth(key),
        )  # fmt: skip

    advance(100)  # creates it (the general path); the key is now known to the server
    trips.clear()
    raised = advance(342665)
    assert (raised.advanced, raised.previous_value) == (True, 100)
    assert raised.counter.current_value == 342665
    assert raised.counter.next_number == "INV-0342666"
    if database.dialect.name == "postgresql":
        # The row locked, raised and audited in one statement that commits by itself.
        assert trips.statements == [("WITH", True, True)]
        assert trips.committed == 0  # (SQLAlchemy's "begin" sends nothing in autocommit)
    else:  # SQLite: one transaction (BEGIN IMMEDIATE serialises writers)
        assert (trips.begun, trips.committed) == (1, 1)
    trips.clear()
    unchanged = advance(500)  # below: nothing written, the answer as it stands
    assert (unchanged.advanced, unchanged.previous_value) == (False, 342665)
    if database.dialect.name == "postgresql":
        assert trips.statements == [("WITH", True, True)]
    with database.connect() as conn:
        audit = conn.execute(
            text("SELECT action, old_value, new_value FROM counter_events ORDER BY id")
        ).all()
    assert [tuple(row) for row in audit] == [("create", None, 100), ("advance", 100, 342665)]


def test_a_hot_issue_is_one_statement_on_postgresql(database, counters, key, trips):
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=10, prefix="I"),
        metadata=auth(key),
    )
    issue = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=2)
    first = counters.IssueNumbers(issue, metadata=auth(key))  # marks the series in use
    # which this one reads (committed): from now on the server knows its reset is fixed
    counters.IssueNumbers(issue, metadata=auth(key))
    trips.clear()
    second = counters.IssueNumbers(issue, metadata=auth(key))
    assert (first.first_value, first.last_value) == (11, 12)
    assert (second.first_value, second.last_value) == (15, 16)
    if database.dialect.name == "postgresql":
        assert trips.statements == [("WITH", True, True)]  # the increment and its audit row
        assert trips.committed == 0
    else:
        assert (trips.begun, trips.committed) == (1, 1)


def test_a_numbered_create_takes_no_savepoint(database, counters, client, key, trips):
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=41,
                                  prefix="ADV-", padding=4),
        metadata=auth(key),
    )  # fmt: skip
    client.create()  # its number puts the series in use,
    client.create()  # which this one reads: the server now knows its reset is fixed
    trips.clear()
    made = client.create()
    assert made.advance_number == "ADV-0044"
    assert trips.savepoints == 0  # an attempt that fails is undone with its transaction
    assert (trips.begun, trips.committed) == (1, 1)
    kinds = [kind for kind, _, _ in trips.statements]
    if database.dialect.name == "postgresql":
        # The entity's settings, the number with its audit row, the advance, its lines:
        # each on the driver's connection.
        assert trips.statements == [
            ("SELECT", False, True), ("WITH", False, True), ("INSERT", False, True),
            ("INSERT", False, True),
        ]  # fmt: skip
    else:  # BEGIN IMMEDIATE; the number's audit row is a statement of its own
        assert kinds == ["BEGIN", "SELECT", "INSERT", "INSERT", "INSERT", "INSERT"]


class Pair:
    """Pairs of counters in the same state: one advanced by AdvanceCounter's path, the other by
    the general path (a batch's), to compare what each does."""

    def __init__(self, database: Engine) -> None:
        self.database = database
        self.uow = UnitOfWork(database)
        self.counters = Counters(self.uow, PageTokens(b"unused"))
        record, _ = KeyStore(self.uow).create("acme", "live", ["counters:write"])
        self.principal = Principal(record.id, Tenant("acme", "live"), frozenset(record.scopes))
        self.names = count()
        self.in_place = 0  # examples AdvanceCounter's path wrote or decided in one statement

    def outcome(self, request: AdvanceRequest, single: bool) -> AdvanceResult | str:
        try:
            if single:
                return self.counters.advance(self.principal, request)
            [outcome] = self.counters.advance_many(self.principal, [request])
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        except errors.ServiceError as error:
            return error.reason

    def audit(self, series: str) -> list[tuple]:
        with self.database.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT action, old_value, new_value, reason FROM counter_events"
                    " WHERE series = :series ORDER BY id"
                ),
                {"series": series},
            )
            return [tuple(row) for row in rows]


@pytest.fixture
def pair(database) -> Pair:
    return Pair(database)


# Each example uses series of its own, so the fixture's state carries nothing over.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    current=st.integers(0, 50),
    advance_to=st.integers(0, 50),
    expected=st.one_of(st.none(), st.integers(0, 50)),
    resets=st.sampled_from([False, False, False, True]),
    missing=st.sampled_from([False, False, False, True]),
)
def test_the_one_statement_advance_decides_as_the_general_path(
    pair_counted, current, advance_to, expected, resets, missing
):
    """Values, an expected value that matches or not, a resetting series (which the one
    statement leaves to the general path), a counter that does not exist yet. (On SQLite
    both are the general path.)"""
    pair = pair_counted
    number = next(pair.names)
    reset = "monthly" if resets else None
    answers, audits = [], []
    for single in (True, False):
        series = f"S{number}{'a' if single else 'b'}"
        period = "2025-06" if resets else ""
        if not missing:
            made = AdvanceRequest("invoice", current, "INV-", 5, series, period, reset=reset)
            pair.outcome(made, single=False)
        request = AdvanceRequest(
            "invoice", advance_to, "INV-", 5, series, "", reset=reset,
            expected_current_value=expected,
        )  # fmt: skip
        answer = pair.outcome(request, single)
        if isinstance(answer, AdvanceResult):
            c = answer.counter
            answer = (answer.advanced, answer.created, answer.previous_value, c.current_value,
                      c.next_number, c.reset)  # fmt: skip
        answers.append(answer)
        audits.append(pair.audit(series))
    assert answers[0] == answers[1]
    assert audits[0] == audits[1]
    pair.in_place += not missing and not resets


@pytest.fixture
def pair_counted(pair, database, proof) -> Iterator[Pair]:
    yield pair
    if database.dialect.name == "postgresql":
        proof(f"{pair.in_place} cases decided by the one-statement advance, as the general path")
