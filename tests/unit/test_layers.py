"""The layers, as imports: domain code knows nothing of gRPC or SQL; servicers reach no
repository; one domain reaches another only through its service."""

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
DOMAINS = ("advances", "counters", "entities", "idempotency", "auth")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


PURE = ("sqlalchemy", "grpc", "arcus", "google", "service.db", "service.rpc")


@pytest.mark.parametrize(
    "module",
    ["advances/domain.py", "counters/domain.py", "entities/settings.py", "idempotency/rules.py",
     "auth/keys.py", "errors.py", "values.py", "pagination.py"],
)  # fmt: skip
def test_domain_modules_know_nothing_of_grpc_or_sql(module):
    assert offending(SERVICE / module, PURE) == []


@pytest.mark.parametrize("domain", ["advances", "counters"])
def test_servicers_reach_no_repository_and_no_sql(domain):
    assert offending(SERVICE / domain / "servicer.py", ("sqlalchemy", "service.db")) == []
    assert [n for n in imports(SERVICE / domain / "servicer.py") if ".repository" in n] == []


def test_one_domain_reaches_another_only_through_its_service():
    for domain in DOMAINS:
        for path in (SERVICE / domain).glob("*.py"):
            for name in imports(path):
                parts = name.split(".")
                if len(parts) >= 3 and parts[0] == "service" and parts[1] in DOMAINS:
                    other, layer = parts[1], parts[2]
                    if other != domain and layer in ("repository", "domain", "messages"):
                        # A domain's values (its `domain` module) may be shared; its
                        # storage and its wire format may not.
                        assert layer == "domain", f"{path.relative_to(SERVICE)} imports {name}"
