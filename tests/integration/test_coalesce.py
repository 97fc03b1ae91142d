"""Coalesced issuance, made deterministic: a first call holds the counter while the next
ones gather, so they run as one group, on SQLite and PostgreSQL."""

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from service import errors
from service.auth.keys import Principal, Tenant
from service.auth.store import KeyStore
from service.counters.domain import MAX_VALUE, AdvanceRequest, IssueResult
from service.counters.service import Counters
from service.db.coalesce import Coalescer
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from tests.reliability.test_transient_conflicts import faults  # noqa: F401  (a fixture)
from tests.tools import Threads

KEY = ("acme", "invoice")


class Setting:
    def __init__(self, database) -> None:
        self.uow = UnitOfWork(database)
        self.counters = Counters(self.uow, PageTokens(b"unused"))
        self.coalescer = Coalescer(self.uow)
        record, _ = KeyStore(self.uow).create("acme", "live", ["counters:write"])
        self.principal = Principal(record.id, Tenant("acme", "live"), frozenset(record.scopes))
        self.database = database

    def issue(self, count: int, idempotency_key: str | None = None) -> IssueResult:
        principal = Principal(
            self.principal.key_id, self.principal.tenant, self.principal.scopes,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        return self.counters.issue(principal, "invoice", count)

    def together(self, works: list[Callable[[], object]]) -> list[object]:
        """The first work runs alone, held until the others have gathered behind it; they
        then run as one group. What each returned, or the exception it raised."""
        entered, release = threading.Event(), threading.Event()

        def first() -> object:
            entered.set()
            release.wait(30)
            return works[0]()

        def outcome(work: Callable[[], object]) -> Callable[[], object]:
            def run() -> object:
                try:
                    return self.coalescer.run(KEY, None, None, work)
                except errors.ServiceError as error:
                    return error

            return run

        threads = Threads([outcome(first)])
        assert entered.wait(30)  # the first call runs: the next ones gather behind it
        others = Threads([outcome(work) for work in works[1:]])
        deadline = time.monotonic() + 30
        while self.coalescer.gathering(KEY) < len(works) - 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        release.set()
        return threads.results(60) + others.results(60)

    def events(self) -> list[tuple[int, int, str | None]]:
        with self.database.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    text(
                        "SELECT first_value, last_value, idempotency_key FROM counter_events"
                        " WHERE action = 'issue' ORDER BY first_value"
                    )
                )
            ]


@pytest.fixture
def setting(database) -> Setting:
    s = Setting(database)
    s.counters.advance(s.principal, AdvanceRequest("invoice", 100, "INV-", None))
    return s


def test_a_group_issues_with_one_increment_each_its_block_and_event(setting):
    counts = [1, 2, 3, 1, 4, 2]
    results = setting.together(
        [lambda c=c, i=i: setting.issue(c, f"key-{i}") for i, c in enumerate(counts)]
    )
    blocks = [(r.first_value, r.last_value) for r in results]
    # The first ran alone; the others, in their arrival order, each its own block.
    assert blocks[0] == (101, 101)
    values = sorted(v for first, last in blocks for v in range(first, last + 1))
    assert values == list(range(101, 101 + sum(counts)))
    for result, count in zip(results, counts, strict=True):
        assert result.last_value - result.first_value + 1 == count
        assert result.counter.current_value == result.last_value
    events = setting.events()
    assert [(f, last) for f, last, _ in events] == sorted(blocks)
    assert {(f, k) for f, _, k in events} == {
        (r.first_value, f"key-{i}") for i, r in enumerate(results)
    }
    assert (setting.coalescer.groups_committed, setting.coalescer.members_committed) == (1, 5)
    if setting.database.dialect.name == "postgresql":  # one transaction: one xmin
        with setting.database.connect() as conn:
            xmins = conn.execute(
                text(
                    "SELECT count(DISTINCT xmin::text) FROM counter_events"
                    " WHERE action = 'issue' AND first_value > 101"
                )
            ).scalar_one()
        assert xmins == 1


def test_a_member_that_fails_fails_alone_and_the_others_issue(setting):
    def invalid() -> object:
        raise errors.InvalidArgument([errors.FieldViolation("count", "bad", "COUNT_OUT_OF_RANGE")])

    results = setting.together(
        [lambda: setting.issue(1), lambda: setting.issue(2), invalid, lambda: setting.issue(3)]
    )
    assert isinstance(results[2], errors.InvalidArgument)
    good = [r for r in results if isinstance(r, IssueResult)]
    values = sorted(v for r in good for v in range(r.first_value, r.last_value + 1))
    assert values == list(range(101, 107))  # no gap, nothing twice
    assert len(setting.events()) == 3
    assert setting.coalescer.groups_undone == 1 and setting.coalescer.groups_committed == 0


def test_a_group_that_would_exhaust_the_counter_runs_alone_and_issues_what_fits(setting):
    setting.counters.advance(
        setting.principal, AdvanceRequest("invoice", MAX_VALUE - 5, None, None)
    )
    results = setting.together([lambda: setting.issue(1)] + [lambda: setting.issue(2)] * 4)
    good = [r for r in results if isinstance(r, IssueResult)]
    exhausted = [r for r in results if isinstance(r, errors.ServiceError)]
    assert sum(r.last_value - r.first_value + 1 for r in good) == 5  # 1 + 2 + 2
    assert [e.reason for e in exhausted] == ["COUNTER_EXHAUSTED"] * 2
    assert setting.coalescer.groups_undone == 1


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # SQLSTATE 40001
def test_a_conflict_in_the_shared_increment_undoes_the_group_and_each_retries_alone(
    setting,
    faults,  # noqa: F811
):
    def first() -> object:
        issued = setting.issue(1)  # alone, before the group
        faults(1, "40001")  # the next UPDATE of counters, the group's increment, fails once
        return issued

    results = setting.together([first] + [lambda: setting.issue(2)] * 3)
    assert all(isinstance(r, IssueResult) for r in results), results
    values = sorted(v for r in results for v in range(r.first_value, r.last_value + 1))
    assert values == list(range(101, 108))
    # One increment by the group, which failed; then one by each member alone.
    assert faults.attempts() == 1 + 3
    assert setting.coalescer.groups_undone == 1
    assert len(setting.events()) == 4
