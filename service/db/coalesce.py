"""Concurrent calls that would queue on one hot row, run as one transaction.

Calls that name the same group (IssueNumbers of one counter) and arrive while an earlier
group of theirs is running gather into the next group. When it starts, its members take
turns on one connection and one transaction, each running its own code in its own thread
as it would alone: its idempotency claim, its checks, its reads. What they share is done
once for all at a barrier (`together`): when every member has reached it (or finished),
one of them runs the combined work (one increment for all their numbers) and each gets
its own part; then each finishes in turn (its event, its idempotency record), and the
group commits once. The row is locked once, and there is one commit, for the whole group.

Whatever goes wrong in a group (a member's error, a combined step that cannot serve them
all, a conflict at commit) undoes the whole transaction, and every member then runs alone,
as it would have without coalescing: so each gets exactly the answer it would get alone,
and a caller whose request fails, fails alone. Only an error that leaves the commit's
outcome unknown (a connection lost while committing) is every member's answer, as it
would be a lone caller's.

A group of one (the first call to an idle counter) runs as a plain call.
"""

import threading
import time
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from service.db import watchdog
from service.db.engine import CONNECT_TIMEOUT, timeout_of
from service.db.failures import translate
from service.db.uow import SharedUnit, UnitOfWork
from service.errors import ServiceError, TransientConflict, Unavailable

T = TypeVar("T")
R = TypeVar("R")

# Members of one group at most: a larger crowd forms the next group.
MAX_MEMBERS = 64
# A group's database work is bounded (its connection by the watchdog, at the earliest of
# its members' deadlines or the server's bound); a member waits for it no longer than this.
MAX_WAIT_SECONDS = 120.0

# A member's states: not started; running (it has the turn); waiting at the barrier;
# resumable (its part is ready, the turn not yet its); done.
_READY, _RUNNING, _WAITING, _RESUMABLE, _DONE = range(5)


class GroupFailed(Exception):
    """The group cannot go on: its transaction is undone and its members run alone."""


@dataclass(eq=False)
class _Member:
    tag: str | None  # the call's idempotency key: two calls with one key never share
    deadline: float  # time.monotonic() by which its database work must end
    caller_deadline: float | None  # its caller's own, if any
    state: int = _READY
    reached: bool = False  # the barrier, once
    share: Any = None
    part: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Group:
    key: Hashable
    members: list[_Member] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    started: bool = False
    turn: int | None = None
    combine: Callable[[list[Any]], list[Any]] | None = None
    combined: bool = False
    failed: bool = False  # undone: its members run alone
    finished: bool = False
    # Every member's answer instead: the database is out of reach (or the commit's outcome
    # unknown), as it would be for each of them alone. A group that gathered behind one
    # that ended so inherits it, rather than wait for the database again.
    error: ServiceError | None = None
    unit: SharedUnit | None = None

    def wait_for(self, ready: Callable[[], bool]) -> None:
        """Waits, holding `cond`, until `ready()`. A started group's work is bounded (its
        connection by the watchdog); this bound is only a safety net."""
        if not self.cond.wait_for(ready, MAX_WAIT_SECONDS):
            raise _timed_out()


def _deadline_passed(group: _Group) -> bool:
    """Whether a caller's own deadline in the group has passed (and so may be what cut
    its database work short)."""
    now = time.monotonic()
    return any(m.caller_deadline is not None and m.caller_deadline <= now for m in group.members)


def _again(error: ServiceError) -> ServiceError:
    """The same error for another caller (each raises its own)."""
    return type(error)(error.reason, error.message, dict(error.metadata), error.domain)


def _timed_out() -> Unavailable:
    return Unavailable(
        "DATABASE_TIMEOUT",
        "the database did not finish in time for the calls ahead of this one on the same "
        "counter: try again shortly",
    )


_membership: ContextVar[tuple[_Group, int] | None] = ContextVar("coalesced", default=None)


def together(share: R, combine: Callable[[list[R]], list[T]]) -> T | None:
    """In a group: waits until every member has reached this point (or finished), then
    `combine` runs once, on all the members' shares in their order, and each member gets
    its own part. Outside a group: None, and the caller does the work alone. `combine`
    raises GroupFailed when it cannot serve them all together."""
    membership = _membership.get()
    if membership is None:
        return None
    group, index = membership
    member = group.members[index]
    if member.reached:
        raise GroupFailed()  # one barrier a member
    member.reached = True
    with group.cond:
        member.share = share
        if group.combine is None:
            group.combine = combine
        member.state = _WAITING
        _pass_turn(group)
        group.wait_for(lambda: group.turn == index)
    if member.error is not None:
        raise GroupFailed() from member.error
    return member.part


class Coalescer:
    """Runs calls of one group key together (see the module's docstring)."""

    def __init__(self, uow: UnitOfWork, max_members: int = MAX_MEMBERS) -> None:
        self.uow = uow
        # The server's bound on one use of a connection, which bounds a group's run.
        self.max_wait = timeout_of(uow.engine) or MAX_WAIT_SECONDS
        self.max_members = max_members
        self._lock = threading.Lock()
        self._running: dict[Hashable, _Group] = {}
        self._forming: dict[Hashable, _Group] = {}
        # Groups of two or more committed, their members, and groups undone (whose members
        # then ran alone): for tests and the bench.
        self.groups_committed = 0
        self.members_committed = 0
        self.groups_undone = 0

    def gathering(self, key: Hashable) -> int:
        """How many calls wait to run together once the running group of `key` ends."""
        with self._lock:
            following = self._forming.get(key)
            return 0 if following is None else len(following.members)

    def run(
        self, key: Hashable, tag: str | None, deadline: float | None, work: Callable[[], T]
    ) -> T:
        """`work()` (the call's whole effect: its units of work join the group's), alone or
        with the calls of the same `key` that gather while an earlier group runs.
        `deadline` (time.monotonic()) bounds its wait for the group to start."""
        # Its database work ends by its deadline or the server's bound from its arrival,
        # however long it waited for the group ahead (the group's connection is watched
        # until the earliest of its members').
        bound = time.monotonic() + self.max_wait
        member = _Member(tag, bound if deadline is None else min(deadline, bound), deadline)
        with self._lock:
            running = self._running.get(key)
            group: _Group | None = None
            if running is None:
                group = self._running[key] = _Group(key, [member], started=True)
            elif tag is None or all(m.tag != tag for m in running.members):
                following = self._forming.setdefault(key, _Group(key))
                if len(following.members) < self.max_members and all(
                    tag is None or m.tag != tag for m in following.members
                ):
                    group = following
                    group.members.append(member)
        if group is None:  # its idempotency key is in flight (it waits for that record),
            return work()  # or the next group is full: alone, as without coalescing
        self._wait_to_start(group, member)
        index = group.members.index(member)
        if index > 0:
            if group.error is not None:
                raise _again(group.error)
            return self._follow(group, index, work)
        try:  # it leads: whatever happens, the group gathered meanwhile starts after it
            if group.error is not None:
                raise _again(group.error)
            if len(group.members) > 1:
                return self._lead(group, work)
            try:
                return work()
            except Unavailable as error:
                group.error = error
                raise
        finally:
            self._next(group)

    def _wait_to_start(self, group: _Group, member: _Member) -> None:
        """Until the group starts; past the member's deadline (or the server's bound) it
        leaves the group, if it has not started yet, and gives up as a database wait does."""
        # The group ahead ends by its own members' deadlines (the watchdog's), plus a new
        # connection's timeout; the margin is for the watchdog's resolution, so that its
        # outcome, not this wait, decides.
        bound = member.deadline + CONNECT_TIMEOUT + 1.0
        with group.cond:
            if group.cond.wait_for(lambda: group.started, max(0.0, bound - time.monotonic())):
                return
        with self._lock:
            if self._forming.get(group.key) is group:
                group.members.remove(member)
                raise _timed_out()
        with group.cond:  # it started meanwhile
            group.wait_for(lambda: group.started)

    def _next(self, group: _Group) -> None:
        """The group has ended: the one gathered meanwhile starts (its first member leads)."""
        with self._lock:
            del self._running[group.key]
            following = self._forming.pop(group.key, None)
            if following is not None and not following.members:
                following = None  # all of them gave up waiting
            if following is not None:
                self._running[group.key] = following
        if following is not None:
            if group.error is not None and not _deadline_passed(group):
                # The database failed the calls ahead, not their callers' deadlines: the
                # calls gathered behind them, waiting for the same database, fail with it
                # rather than wait for it again.
                following.error = group.error
            with following.cond:
                following.started = True
                following.cond.notify_all()

    def _lead(self, group: _Group, work: Callable[[], T]) -> T:
        try:
            with watchdog.bounded(min(m.deadline for m in group.members)):
                unit = group.unit = self.uow.begin_shared()
        except BaseException as error:
            with group.cond:  # nothing was done
                group.failed = group.finished = True
                if isinstance(error, Unavailable):
                    group.error = error
                group.cond.notify_all()
            return self._answer(group, None, work)
        try:
            with group.cond:
                group.members[0].state, group.turn = _RUNNING, 0
                group.cond.notify_all()
            outcome = self._take_turns(group, 0, work)
            with group.cond:
                group.wait_for(lambda: all(m.state == _DONE for m in group.members))
            if group.failed:
                unit.rollback()
            else:
                try:
                    unit.commit()
                    self.groups_committed += 1
                    self.members_committed += len(group.members)
                except TransientConflict:
                    group.failed = True  # undone for certain: run again alone
                except ServiceError as error:  # the outcome is unknown, as for a lone call
                    group.failed, group.error = True, error
        finally:
            unit.close()
            with group.cond:
                group.finished = True
                group.cond.notify_all()
        if group.failed:
            self.groups_undone += 1
        return self._answer(group, outcome, work)

    def _follow(self, group: _Group, index: int, work: Callable[[], T]) -> T:
        with group.cond:
            group.wait_for(lambda: group.turn == index or group.finished)
            runs = group.turn == index
        outcome = self._take_turns(group, index, work) if runs else None
        with group.cond:
            group.wait_for(lambda: group.finished)
        return self._answer(group, outcome, work)

    def _take_turns(self, group: _Group, index: int, work: Callable[[], T]) -> T | None:
        """This member's work on the group's transaction, in its turns."""
        member = group.members[index]
        assert group.unit is not None
        token = _membership.set((group, index))
        outcome: T | None = None
        try:
            with group.unit.joined():
                outcome = work()
        except BaseException as error:  # the group is undone; the member runs again alone
            member.error = error
        finally:
            _membership.reset(token)
        with group.cond:
            if member.error is not None:
                member.error = _fail(group, member.error)
            member.state = _DONE
            _pass_turn(group)
        return outcome

    @staticmethod
    def _answer(group: _Group, outcome: T | None, work: Callable[[], T]) -> T:
        if group.error is not None:
            raise _again(group.error)
        if group.failed:
            return work()
        return outcome  # type: ignore[return-value]


def _pass_turn(group: _Group) -> None:
    """Called, holding `cond`, by the member whose turn ends: the turn goes to the next
    member yet to start; when none is left, the combined work runs (once) and the members
    waiting for it resume, in order; when all are done, nobody has the turn. A failed group
    starts nobody else."""
    members = group.members
    if group.failed:
        for member in members:
            if member.state == _READY:
                member.state = _DONE
    following = next((i for i, m in enumerate(members) if m.state == _READY), None)
    if following is None:
        waiting = [i for i, m in enumerate(members) if m.state == _WAITING]
        if waiting and not group.combined:
            group.combined = True
            _combine(group, waiting)
        following = next((i for i, m in enumerate(members) if m.state == _RESUMABLE), None)
    if following is not None:
        members[following].state = _RUNNING
    group.turn = following
    group.cond.notify_all()


def _combine(group: _Group, waiting: list[int]) -> None:
    """The combined work, on the shares of the members waiting for it; each their part,
    or (when it fails) the error that undoes the group."""
    members = group.members
    try:
        if group.failed or group.combine is None:
            raise GroupFailed()
        parts = group.combine([members[i].share for i in waiting])
        for i, part in zip(waiting, parts, strict=True):
            members[i].part = part
    except BaseException as raised:
        error = _fail(group, raised)
        for i in waiting:
            members[i].error = error
    for i in waiting:
        members[i].state = _RESUMABLE


def _fail(group: _Group, raised: BaseException) -> BaseException:
    """Marks the group undone by `raised` (in the domain's terms, which it returns): its
    members then run alone, unless the database is out of reach, which is their answer."""
    error = translate(raised) if isinstance(raised, DBAPIError) else raised
    group.failed = True
    if isinstance(error, Unavailable) and group.error is None:
        group.error = error
    return error
