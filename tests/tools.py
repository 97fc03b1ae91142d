"""Helpers shared by the tests: a tool that may be missing, threads whose outcome counts,
and the field violations of an INVALID_ARGUMENT error."""

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, NoReturn, TypeVar

import grpc
import pytest

from tests.errors import RichError

T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def missing(what: str) -> NoReturn:
    """A tool a test needs is not on this machine: the test is skipped, except in CI
    (CI=true), which installs every tool, so that there a missing one fails the test
    instead of leaving it silently unrun."""
    __tracebackhide__ = True  # reported where the test called it
    if in_ci():
        pytest.fail(f"{what} (CI=true: a missing tool fails instead of skipping)", pytrace=False)
    pytest.skip(what)


class Threads(Generic[T]):
    """Callables, all started at once, each in a thread of its own.

    `results` waits for them and gives what each returned. Nothing is lost: an exception
    raised in a thread is raised again there, and a thread still running at the timeout
    fails the test. The threads are daemons, so one that hangs cannot hang the test run.
    """

    def __init__(self, calls: Iterable[Callable[[], T]], name: str = "test") -> None:
        self._outcomes: dict[int, tuple[bool, object]] = {}
        self._threads = [
            threading.Thread(
                target=self._run, args=(index, call), name=f"{name}-{index}", daemon=True
            )
            for index, call in enumerate(calls)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int, call: Callable[[], T]) -> None:
        try:
            self._outcomes[index] = (True, call())
        except BaseException as error:  # raised again in results()
            self._outcomes[index] = (False, error)

    def done(self) -> list[bool]:
        return [not thread.is_alive() for thread in self._threads]

    def results(self, timeout: float) -> list[T]:
        """What every call returned, in order, all within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Exceptions first: a thread that failed may be why others are stuck.
        for index in range(len(self._threads)):
            ok, value = self._outcomes.get(index, (True, None))
            if not ok:
                assert isinstance(value, BaseException)
                raise value
        running = [t.name for t in self._threads if t.is_alive()]
        if running:
            pytest.fail(f"still running after {timeout} s: {', '.join(running)}")
        return [self._outcomes[index][1] for index in range(len(self._threads))]  # type: ignore[misc]


def run_in_threads(calls: Iterable[Callable[[], T]], timeout: float) -> list[T]:
    """Runs the calls at once, each in a thread of its own; see Threads.results."""
    return Threads(calls).results(timeout)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls until `condition()` holds; fails the test if it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.01)


def violations(error: RichError) -> dict[str, str]:
    """The field violations (field -> reason) of an error that must be INVALID_ARGUMENT,
    whose ErrorInfo names their one reason, or else INVALID_FIELDS with every reason (and
    how many violations) in its metadata."""
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, (error.code, error.message)
    assert error.violations, f"no field violations in {error.message!r}"
    reasons = set(error.violations.values())
    if error.info.reason != "INVALID_FIELDS":
        assert reasons == {error.info.reason}, (error.info.reason, reasons)
        assert "reasons" not in error.info.metadata
    else:
        named = error.info.metadata["reasons"].split(",")
        assert len(named) == len(set(named)) >= 2 and reasons <= set(named), (named, reasons)
        assert int(error.info.metadata["violations"]) >= len(error.violations)
    return error.violations
