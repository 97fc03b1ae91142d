"""The error contract the protos declare (arcus.errors.v1 options), and a pytest plugin
holding the service to it: every error status a method produces during the run must be
declared on that method or its service, so that the contract other teams generate from
names every (domain, reason) a call can end with. Undeclared ones fail the run."""

import pytest
from arcus.errors.v1 import errors_pb2
from google.rpc import error_details_pb2, status_pb2

from service.advances import servicer as advance_servicer
from service.counters import servicer as counter_servicer
from service.rpc import interceptor
from service.server import SERVICES

# The modules that make error statuses, each through its own name for status_for.
_MAKERS = (interceptor, counter_servicer, advance_servicer)
# Batch items' statuses are made with `where` = "<Method> item <n>".
_BATCH_METHODS = {
    s.methods_by_name[name].name: f"/{s.full_name}/{name}"
    for s in SERVICES
    for name in ("BatchAdvanceCounters", "BatchCreateAdvances")
    if name in s.methods_by_name
}

Reason = tuple[str, str]  # (domain, reason)


def declared() -> dict[str, set[Reason]]:
    """Each method's declared reasons: its own and its service's common ones."""
    contract = {}
    for service in SERVICES:
        package = service.file.package
        options = service.GetOptions().Extensions
        common: list[error_details_pb2.ErrorInfo] = options[errors_pb2.common_errors]  # type: ignore[index]
        for method in service.methods:
            extensions = method.GetOptions().Extensions
            own: list[error_details_pb2.ErrorInfo] = extensions[errors_pb2.errors]  # type: ignore[index]
            contract[f"/{service.full_name}/{method.name}"] = {
                (info.domain or package, info.reason) for info in [*common, *own]
            }
    return contract


observed: dict[tuple[str, str, str], str] = {}  # (method, domain, reason) -> a test that saw it
_current_test = [""]


def _method(where: str) -> str:
    return where if where.startswith("/") else _BATCH_METHODS[where.split()[0]]


def _recording(status_for):
    def record(error: Exception, default_domain: str, where: str) -> status_pb2.Status:
        status = status_for(error, default_domain, where)
        info = error_details_pb2.ErrorInfo()
        status.details[0].Unpack(info)
        observed.setdefault((_method(where), info.domain, info.reason), _current_test[0])
        return status

    return record


def pytest_configure(config: pytest.Config) -> None:
    for module in _MAKERS:
        module.status_for = _recording(module.status_for)  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _current_test[0] = item.nodeid
    return (yield)


def undeclared() -> list[str]:
    contract = declared()
    return [
        f"{method} answered {domain} {reason} (first in {test})"
        for (method, domain, reason), test in sorted(observed.items())
        if method in contract and (domain, reason) not in contract[method]
    ]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    missing = undeclared()
    methods = len({method for method, _, _ in observed})
    terminalreporter.write_line(
        f"Declared errors: {len(observed)} (method, domain, reason) seen in {methods} methods, "
        f"{len(missing)} not declared in the protos"
    )
    for line in missing:
        terminalreporter.write_line(f"  undeclared: {line}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if undeclared() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
