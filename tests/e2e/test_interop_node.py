"""Another language: the Node.js client under tests/interop/node calls both services."""

import json
import os
import shutil
import subprocess

import pytest

from tests.processes import ROOT, served
from tests.tools import missing

NODE_DIR = ROOT / "tests" / "interop" / "node"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        missing("node is not installed: the Node.js interop test needs it")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").exists():
        npm = shutil.which("npm")
        if npm is None:
            missing("npm is not installed: the Node.js interop test needs it for its packages")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR, check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    return found


def test_a_node_client_calls_both_services(node, tmp_path):
    with served(tmp_path) as server:
        key = (tmp_path / "var" / "dev-api-key").read_text().strip()
        result = subprocess.run(
            [node, str(NODE_DIR / "client.js")],
            env={**os.environ, "TARGET": server.address, "API_KEY": key},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)

    # Auth, with google.rpc.Status details decoded from grpc-status-details-bin.
    unauthenticated = seen["unauthenticated"]
    assert (unauthenticated["ok"], unauthenticated["code"]) == (False, 16)
    [info] = unauthenticated["status"]["details"]
    assert info["type"] == "google.rpc.ErrorInfo"
    assert info["value"] == {"reason": "API_KEY_MISSING", "domain": "arcus.auth.v1"}

    # A success, with int64 values as strings the JavaScript way.
    counter = seen["advanced"]["response"]["counter"]
    assert (counter["currentValue"], counter["nextNumber"]) == ("342665", "INV-0342666")

    # Bad input: ErrorInfo and BadRequest field violations.
    invalid = seen["invalid"]
    assert invalid["code"] == 3
    types = {d["type"]: d["value"] for d in invalid["status"]["details"]}
    assert types["google.rpc.ErrorInfo"]["reason"] == "PADDING_OUT_OF_RANGE"
    assert types["google.rpc.BadRequest"]["fieldViolations"] == [
        {
            "field": "padding",
            "description": "must be 1..12, got 13",
            "reason": "PADDING_OUT_OF_RANGE",
        }
    ]

    # AdvanceService: the reference's create example, and a NOT_FOUND with its reason.
    created = seen["created"]["response"]
    assert (created["totalEntered"], created["state"]) == ("500.00", "ADVANCE_STATE_POSTED")
    assert created["key"] == created["id"] and int(created["key"]) < 2**53  # exact in JS
    assert created["items"][0]["dimensions"]["location"]["id"] == "CA"
    missing = seen["missing"]
    assert missing["code"] == 5
    assert missing["status"]["details"][0]["value"]["reason"] == "ADVANCE_NOT_FOUND"
