"""The benchmark harness runs (2 s per scenario), so `make bench` cannot rot."""

import subprocess
import sys

from tests import postgres
from tests.processes import ROOT, service_env
from tests.tools import missing


def test_the_benchmark_harness_runs_every_scenario():
    if postgres.find_bin_dir() is None:
        missing("make bench needs PostgreSQL's server binaries")
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--smoke"],
        cwd=ROOT, env=service_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for scenario in (
        "no-op baseline",
        "no-op baseline, grpc.aio server",
        "no-op baseline, grpc.aio + thread pool (the service's type)",
        "AdvanceCounter, spread counters",
        "IssueNumbers, one hot counter",
        "IssueNumbers, idempotent replay",
        "BatchAdvanceCounters, 50 items",
        "CreateAdvance, 3 lines, numbered",
        "BatchCreateAdvances, 100 of those",
        "SQL baseline",
        "bare: AdvanceCounter, spread counters",
        "bare: AdvanceCounter, on the service's server type, with its per-call duties",
        "bare: AdvanceCounter, async handlers and driver, with the duties",
        "bare: IssueNumbers, one hot counter, coalesced, async, with the duties",
        "ListAdvances FULL, first page (2,000 advances)",
        "ListAdvances FULL, page past row 1,800",
    ):
        assert f"| {scenario}" in table, table
    # The first table's rows of the bare servers (seven columns, the last the errors).
    bare_rows = [r for r in table.splitlines() if r.startswith("| bare: ") and r.count("|") == 8]
    assert len(bare_rows) == 6, table
    assert all(row.endswith("| 0 |") for row in bare_rows), table  # no call failed
    assert "ListAdvances: the deep page's p50 is" in table
    assert "Duplicate numbers issued: 0" in table
    assert "Service start to SERVING:" in table
    assert "| no number issued twice |  | 0 | yes |" in table
