"""The common calls take the round trips BENCHMARKS.md counts (issue 17), through a real
server on both backends; AdvanceCounter's one statement decides exactly as the general
path does, on every combination of values that matters; and a create's one statement
numbers as the domain does, follows settings changed since it read them, and leaves every
refusal to the general path."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.receivables.v1 import advances_pb2 as apb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text
from sqlalchemy.engine.default import DefaultExecutionContext

from service import errors
from service.advances.messages import parse_create
from service.advances.service import Advances
from service.auth.keys import Principal, Tenant
from service.auth.store import KeyStore
from service.counters.domain import (
    MAX_PADDING,
    MAX_PREFIX_LENGTH,
    MAX_VALUE,
    MIN_PADDING,
    NEVER,
    AdvanceRequest,
    AdvanceResult,
    Calendar,
    Format,
    Series,
)
from service.counters.service import Counters
from service.db import models
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from tests.advances import advance_message, configure, count_rows, item, payload
from tests.errors import rich_error
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


def test_a_create_is_one_statement_on_postgresql(database, counters, client, key, trips):
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=41,
                                  prefix="ADV-", padding=4),
        metadata=auth(key),
    )  # fmt: skip
    first = client.create()  # the counter's first issue puts its series in use
    trips.clear()
    made = client.create()
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    assert (first.advance_number, made.advance_number, draft.advance_number) == (
        "ADV-0042", "ADV-0043", "",
    )  # fmt: skip
    assert trips.savepoints == 0
    if database.dialect.name == "postgresql":
        # Each: the advance, its lines, its number and the number's audit row in one
        # statement that commits by itself, checked against the entity's settings as
        # the first create read them.
        assert trips.statements == [("WITH", True, True), ("WITH", True, True)]
        assert trips.committed == 0
    else:  # SQLite: a transaction each (BEGIN IMMEDIATE serialises writers)
        assert (trips.begun, trips.committed) == (2, 2)
    assert client.get(made.key) == made
    with database.connect() as conn:
        audit = conn.execute(
            text("SELECT action, old_value, new_value, first_value, last_value"
                 " FROM counter_events WHERE counter_type = 'ar_advance' ORDER BY id")
        ).all()  # fmt: skip
    assert [tuple(row) for row in audit][1:] == [
        ("issue", 41, 42, 42, 42), ("issue", 42, 43, 43, 43),
    ]  # fmt: skip


def test_a_keyed_create_is_one_statement_in_the_keys_transaction(
    database, counters, channel, client, key, trips
):
    """With an idempotency key the statement joins the key's transaction, in a savepoint
    (a refusal leaves it usable); the number's audit row names the key, and a replay
    answers the same bytes without issuing again."""
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=7,
                                  prefix="K-", padding=3),
        metadata=auth(key),
    )  # fmt: skip
    client.create()  # the series in use: K-008
    call = channel.unary_unary("/arcus.receivables.v1.AdvanceService/CreateAdvance")
    request = apb.CreateAdvanceRequest(advance=advance_message(payload())).SerializeToString()
    keyed = (*auth(key), ("idempotency-key", "create-1"))
    trips.clear()
    first = apb.Advance.FromString(call(request, metadata=keyed))
    assert first.advance_number == "K-009"
    if database.dialect.name == "postgresql":
        kinds = [kind for kind, _, _ in trips.statements]
        assert kinds.count("WITH") == 1 and trips.savepoints == 1
        assert trips.committed == 1  # the key's record and the advance, together
    assert call(request, metadata=keyed) == first.SerializeToString()
    with database.connect() as conn:
        audit = conn.execute(
            text("SELECT last_value, idempotency_key FROM counter_events"
                 " WHERE action = 'issue' ORDER BY id")
        ).all()  # fmt: skip
    assert [tuple(row) for row in audit] == [(8, None), (9, "create-1")]
    assert count_rows(database, models.Advance) == 2


def test_a_create_follows_settings_changed_since_the_last_read(database, counters, client, key):
    """The one statement holds the settings the create was checked with: changed since
    (here by another process), it writes nothing and the general path decides."""
    client.create()  # the entity's settings, read and remembered
    configure(database, ar_account_labels=True, base_currency="EUR")
    with pytest.raises(grpc.RpcError) as refused:
        client.create(payload(items=[item()]))  # no account label on its line
    assert "ACCOUNT_LABEL_REQUIRED" in rich_error(refused.value).violations.values()
    configure(database, ar_account_labels=False)
    assert client.create().payment_information.currency.base_currency == "EUR"
    assert count_rows(database, models.Advance) == 2


def test_an_exhausted_counter_or_a_taken_number_fails_the_create_alone(
    database, counters, client, key
):
    """The one statement writes nothing; the general path gives the error."""
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE,
                                  advance_to=MAX_VALUE - 2, prefix="A"),
        metadata=auth(key),
    )  # fmt: skip
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    assert client.create().advance_number == f"A{MAX_VALUE - 1}"
    assert client.create().advance_number == f"A{MAX_VALUE}"
    assert _refused(client.create) == "COUNTER_EXHAUSTED"
    assert _refused(lambda: client.SubmitAdvance(apb.SubmitAdvanceRequest(key=draft.key))) == (
        "COUNTER_EXHAUSTED"
    )
    assert count_rows(database, models.Advance) == 3


def _refused(call: Callable[[], object]) -> str:
    """The reason the call failed with."""
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return rich_error(refused.value).info.reason


def test_a_number_taken_by_a_legacy_advance_fails_the_create(database, counters, client, key):
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=5,
                                  prefix="L-", padding=2),
        metadata=auth(key),
    )  # fmt: skip
    assert client.create().advance_number == "L-06"  # the series in use
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    legacy = payload(advanceNumber="L-07x")  # not in the counter's format: it stays
    client.create(legacy)
    with database.begin() as conn:  # a row the counter does not know of, as a bug leaves
        conn.execute(text("UPDATE advances SET advance_number = 'L-07'"
                          " WHERE advance_number = 'L-07x'"))  # fmt: skip
    before = count_rows(database, models.CounterEvent)
    assert _refused(client.create) == "ADVANCE_COUNTER_BEHIND"
    assert _refused(lambda: client.SubmitAdvance(apb.SubmitAdvanceRequest(key=draft.key))) == (
        "ADVANCE_COUNTER_BEHIND"
    )
    assert count_rows(database, models.Advance) == 3
    assert count_rows(database, models.CounterEvent) == before  # no number burned


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


class Creates:
    """Numbered creates at the service's level, each example in an entity of its own."""

    def __init__(self, database: Engine) -> None:
        self.uow = UnitOfWork(database)
        tokens = PageTokens(b"unused")
        self.counters = Counters(self.uow, tokens)
        self.advances = Advances(self.uow, tokens, self.counters)
        self.entities = count()
        self.alone = 0  # examples whose second create was one statement

    def principal(self) -> Principal:
        entity = f"e{next(self.entities)}"
        record, _ = KeyStore(self.uow).create(entity, "live", ["advances:write"])
        return Principal(record.id, Tenant(entity, "live"), frozenset(record.scopes))

    def create(self, principal: Principal) -> str | None:
        fields, _, state = parse_create(advance_message(payload()))
        return self.advances.create(principal, fields, "", state).advance_number


@pytest.fixture
def creates(database, proof) -> Iterator[Creates]:
    made = Creates(database)
    yield made
    if database.dialect.name == "postgresql":
        proof(f"{made.alone} creates numbered in one statement, as domain.format_number writes")


_AFFIX = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="{}"),
    max_size=MAX_PREFIX_LENGTH,
).filter(str.isprintable)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.one_of(_AFFIX, st.sampled_from(["ADV-{YYYY}-", "{FY}/"])),
    suffix=_AFFIX,
    padding=st.integers(MIN_PADDING, MAX_PADDING),
    value=st.one_of(st.integers(1, 10**13), st.integers(MAX_VALUE - 10**6, MAX_VALUE - 1)),
)
def test_a_number_written_by_the_statement_is_the_domains(
    creates, trips, database, prefix, suffix, padding, value
):
    """The one statement writes the number as the domain does (value wider than the
    padding, any printable prefix and suffix); a format with date tokens is left to the
    general path, which writes it with today's date."""
    principal = creates.principal()
    advanced = AdvanceRequest("ar_advance", value - 1, prefix, padding, suffix=suffix)
    creates.counters.advance(principal, advanced)
    first = creates.create(principal)  # the first issue: the general path
    trips.clear()
    second = creates.create(principal)
    now = datetime.now(UTC)
    calendar = Calendar(now.date())  # (the entity's time zone is UTC)
    series = Series("ar_advance", "", Format(prefix, padding, suffix, NEVER), True, now, now)
    expected = series.counter("", calendar).dated(calendar.today, calendar).number
    assert (first, second) == (expected(value), expected(value + 1))
    if "{" not in prefix and database.dialect.name == "postgresql":
        assert trips.statements == [("WITH", True, True)]
        creates.alone += 1
