"""`python -m service counters history`: the auditor's export, as a table or CSV, streamed
in bounded memory."""

import csv
import io
import subprocess
import sys

import pytest
from arcus.counters.v1 import counters_pb2 as pb
from sqlalchemy import text

from tests.e2e.test_cli_and_serve import url_of
from tests.processes import ROOT, cli, service_env
from tests.support import auth

INVOICE = pb.COUNTER_TYPE_INVOICE


@pytest.fixture
def trail(counters, key, keys):
    """acme/live: an invoice counter advanced, issued from, voided; an EU series; and one
    event of acme/test that the live export must not show."""
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=100, prefix="INV-"),
        metadata=auth(key),
    )
    counters.IssueNumbers(
        pb.IssueNumbersRequest(counter_type=INVOICE, count=3),
        metadata=(*auth(key), ("idempotency-key", "batch-7")),
    )
    counters.VoidNumbers(
        pb.VoidNumbersRequest(
            counter_type=INVOICE, first_value=102, last_value=102, reason='paper jam, "bin 4"'
        ),
        metadata=auth(key),
    )
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=7, prefix="EU-", series="EU"),
        metadata=auth(key),
    )
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_PO, advance_to=1, prefix="P"),
        metadata=auth(keys.create(mode="test")),
    )


def exported(database, tmp_path, *args):
    result = cli(
        "counters", "history", "--entity", "acme", *args, cwd=tmp_path,
        DATABASE_URL=url_of(database),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_csv_export_has_every_event_of_the_entity_and_mode(database, tmp_path, trail):
    rows = list(csv.DictReader(io.StringIO(exported(database, tmp_path, "--csv"))))
    assert [(r["counter_type"], r["series"], r["kind"], r["first_value"], r["last_value"])
            for r in rows] == [
        ("invoice", "", "created", "", ""),
        ("invoice", "", "issued", "101", "103"),
        ("invoice", "", "voided", "102", "102"),
        ("invoice", "EU", "created", "", ""),
    ]  # fmt: skip
    assert rows[1]["idempotency_key"] == "batch-7"
    assert rows[2]["reason"] == 'paper jam, "bin 4"'  # quoted as CSV quotes it
    assert all(r["key_id"].isdigit() and len(r["event_id"]) == 16 for r in rows)
    assert [r["counter_type"] for r in csv.DictReader(
        io.StringIO(exported(database, tmp_path, "--csv", "--test"))
    )] == ["po"]  # fmt: skip
    only_eu = list(
        csv.DictReader(io.StringIO(exported(database, tmp_path, "--csv", "--series", "EU")))
    )
    assert [r["series"] for r in only_eu] == ["EU"]
    assert exported(database, tmp_path, "--csv", "--type", "po").strip() == ",".join(
        rows[0].keys()
    )  # a header and nothing else


def test_the_table_reads_on_a_terminal(database, tmp_path, trail):
    lines = exported(database, tmp_path).splitlines()
    assert lines[0].split()[:5] == ["time", "counter_type", "series", "period", "kind"]
    assert len(lines) == 5
    assert "voided" in lines[3] and lines[3].endswith('paper jam, "bin 4"')


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--entity", "bad entity!"], "entity: must be"),
        (["--entity", "acme", "--series", "a b"], "series: must be 1..40"),
    ],
)
def test_bad_arguments_exit_2(database, tmp_path, args, complaint):
    result = cli("counters", "history", *args, cwd=tmp_path, DATABASE_URL=url_of(database))
    assert result.returncode == 2 and complaint in result.stderr


def peak_rss_exporting(url: str, tmp_path) -> int:
    """The export's peak resident memory in KiB, measured inside its own process."""
    probe = (
        "import resource, sys\n"
        "from service.__main__ import main\n"
        "code = main(['counters', 'history', '--entity', 'acme', '--csv'])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    with open(tmp_path / "export.csv", "wb") as out:
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=service_env(DATABASE_URL=url),
            stdout=out, stderr=subprocess.PIPE, text=True, timeout=300,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1])


def add_events(database, count: int) -> None:
    """`count` issue events of acme/live, written straight in SQL."""
    with database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO counter_events (entity_id, mode, counter_type, series, period, "
                "action, old_value, new_value, first_value, last_value, reason, event_key, "
                "create_time) "
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
                "SELECT 'acme', 'live', 'invoice', '', '', 'issue', i - 1, i, i, i, '', "
                "1000000000000000 + i, '2026-11-30 12:00:00.000000' FROM n"
            ),
            {"count": count},
        )


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_export_streams_in_bounded_memory(database, tmp_path, proof):
    """Ten times the events, the same memory: the export never holds them all."""
    url = url_of(database)
    add_events(database, 10_000)
    small = peak_rss_exporting(url, tmp_path)
    add_events(database, 90_000)
    large = peak_rss_exporting(url, tmp_path)
    with open(tmp_path / "export.csv") as export:
        lines = sum(1 for _ in export)
    assert lines == 100_001
    assert large - small < 8 * 1024, (small, large)
    proof(f"exporting 10,000 events peaked at {small // 1024} MiB, 100,000 at {large // 1024} MiB")
