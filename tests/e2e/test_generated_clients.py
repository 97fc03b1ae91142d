"""Clients generated from protos/ alone with the README's commands, as other teams would:
the Go client under tests/interop/go built on Debian's Go toolchain and grpc-go and run
against a live server; the Java and TypeScript output compiled."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import ROOT, served
from tests.tools import missing

SECTION = "## Generating a client in another language"
GO_MODULE = "github.com/arcus-erp/arcus-service/gen/go"
# Debian's Go packages (golang-google-grpc-dev and the rest), built in GOPATH mode: the
# module proxy is not reachable here, and a team's own build would take the same sources
# as modules.
DEBIAN_GOPATH = Path("/usr/share/gocode")
JAVA_JARS = (
    "protobuf",
    "grpc-api",
    "grpc-stub",
    "grpc-protobuf",
    "guava",
    "geronimo-annotation-1.3-spec",
)
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"


def generation_commands() -> dict[str, str]:
    """The README section's sh blocks, by the language their first comment names."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    section = text[start : text.index("\n## ", start + len(SECTION))]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return {block.split(":", 1)[0].lstrip("# "): block for block in blocks}


def tools(*names: str) -> dict[str, str]:
    found = {name: shutil.which(name) for name in names}
    absent = [name for name, path in found.items() if path is None]
    if absent:
        missing(f"{', '.join(absent)} not installed: a generated-client test needs it")
    return {name: path for name, path in found.items() if path}


def generate(language: str, workdir: Path) -> None:
    """Runs the README's command for `language` as written, in a checkout-like directory."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "protos").symlink_to(ROOT / "protos")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", generation_commands()[language]],
        cwd=workdir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr


def test_the_readme_shows_go_java_and_typescript():
    commands = generation_commands()
    assert sorted(commands) == ["Go", "Java", "TypeScript"]
    for command in commands.values():
        assert "protoc -I protos" in command and " M" not in command and "--go_opt=M" not in command


def test_every_arcus_proto_names_its_package_for_each_language():
    for proto in sorted((ROOT / "protos" / "arcus").rglob("*.proto")):
        text = proto.read_text()
        options = dict(re.findall(r'^option (\w+) = "?(.*?)"?;$', text, re.M))
        package = re.search(r"^package ([\w.]+);", text, re.M)[1]  # type: ignore[index]
        name = package.split(".")[1]
        assert options == {
            "csharp_namespace": f"Arcus.{name.title()}.V1",
            "go_package": f"{GO_MODULE}/arcus/{name}/v1;{name}v1",
            "java_multiple_files": "true",
            "java_outer_classname": f"{proto.stem.title()}Proto",
            "java_package": f"com.arcus.{name}.v1",
        }, proto


@pytest.fixture(scope="module")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go client, built from stubs the README's Go command generated."""
    found = tools("go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc")
    if not (DEBIAN_GOPATH / "src" / "google.golang.org" / "grpc").exists():
        missing("grpc-go is not installed (Debian's golang-google-grpc-dev)")
    gopath = tmp_path_factory.mktemp("gopath")
    # The README's command, run where GOPATH mode finds the module's packages.
    module = gopath / "src" / GO_MODULE.removesuffix("/gen/go")
    generate("Go", module)
    assert (module / "gen/go/arcus/counters/v1/counters_grpc.pb.go").exists()
    # Debian's genproto predates BadRequest.FieldViolation.reason: the test generates
    # google/rpc from protos/ (their go_package is genproto's own path, so it takes its place).
    subprocess.run(
        [found["protoc"], "-I", "protos", f"--go_out={gopath / 'src'}",
         "google/rpc/status.proto", "google/rpc/error_details.proto"],
        cwd=module, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    binary = gopath / "client"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}{os.pathsep}{DEBIAN_GOPATH}",
        "GOCACHE": str(gopath / "cache"),
        "GOFLAGS": "",
    }
    result = subprocess.run(
        [found["go"], "build", "-o", str(binary), "client.go"],
        cwd=ROOT / "tests" / "interop" / "go", env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return binary


def test_a_go_client_generated_from_the_protos_calls_both_services(go_client, tmp_path):
    with served(tmp_path) as server:
        key = (tmp_path / "var" / "dev-api-key").read_text().strip()
        result = subprocess.run(
            [str(go_client)],
            env={**os.environ, "TARGET": server.address, "API_KEY": key},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)

    # Refusals, with google.rpc.Status details decoded by grpc-go's status package.
    assert seen["unauthenticated"] == {
        "code": "Unauthenticated",
        "message": seen["unauthenticated"]["message"],
        "reason": "API_KEY_MISSING",
        "domain": "arcus.auth.v1",
    }
    invalid = seen["invalid"]
    assert (invalid["code"], invalid["reason"]) == ("InvalidArgument", "PADDING_OUT_OF_RANGE")
    assert invalid["violations"] == [
        {
            "field": "padding",
            "description": "must be 1..12, got 13",
            "reason": "PADDING_OUT_OF_RANGE",
        }
    ]
    assert (seen["missing"]["code"], seen["missing"]["reason"]) == ("NotFound", "ADVANCE_NOT_FOUND")

    # The cutover, then a keyed retry answered from the record, and said so in a header.
    assert seen["advanced"] == {"current": 342665, "next": "INV-0342666"}
    numbers = ["INV-0342666", "INV-0342667", "INV-0342668"]
    assert seen["issued"] == {"numbers": numbers, "first": 342666, "last": 342668, "replayed": None}
    assert seen["retried"] == {**seen["issued"], "replayed": ["true"]}

    # A migrated advance keeps its number, and is found by its key and by that number.
    created = seen["created"]
    assert (created["state"], created["total"], created["location"]) == (
        "ADVANCE_STATE_POSTED", "500.00", "CA",
    )  # fmt: skip
    assert created["number"] == "ADV-0001500"
    found = {"key": created["key"], "etag": created["etag"]}
    assert created["by_key"] == created["by_number"] == found


def test_the_readme_java_command_generates_stubs_that_compile(tmp_path):
    found = tools("protoc", "grpc_java_plugin", "javac")
    jars = [Path(f"/usr/share/java/{name}.jar") for name in JAVA_JARS]
    if absent := [str(jar) for jar in jars if not jar.exists()]:
        missing(f"{', '.join(absent)} not installed: the Java stubs need them to compile")
    generate("Java", tmp_path)
    sources = sorted(str(p) for p in (tmp_path / "gen" / "java").rglob("*.java"))
    stubs = {Path(s).relative_to(tmp_path / "gen" / "java").as_posix() for s in sources}
    assert {
        "com/arcus/counters/v1/CounterServiceGrpc.java",
        "com/arcus/counters/v1/IssueNumbersRequest.java",  # java_multiple_files
        "com/arcus/counters/v1/CountersProto.java",
        "com/arcus/receivables/v1/AdvanceServiceGrpc.java",
        "com/google/rpc/BadRequest.java",
    } <= stubs
    result = subprocess.run(
        [found["javac"], "-d", str(tmp_path / "classes"), "-cp", os.pathsep.join(map(str, jars)),
         *sources],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "classes/com/arcus/counters/v1/CounterServiceGrpc.class").exists()


def test_the_readme_typescript_command_generates_code_that_type_checks(tmp_path):
    tools("protoc")
    tsc = NODE_MODULES / ".bin" / "tsc"
    if not (NODE_MODULES / ".bin" / "protoc-gen-es").exists() or not tsc.exists():
        missing("protoc-gen-es and typescript are not installed (make node)")
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    generate("TypeScript", tmp_path)
    sources = sorted(str(p) for p in (tmp_path / "gen" / "ts").rglob("*.ts"))
    assert len(sources) == 6
    counters = (tmp_path / "gen/ts/arcus/counters/v1/counters_pb.ts").read_text()
    assert "export const CounterService" in counters and "issueNumbers" in counters
    result = subprocess.run(
        [str(tsc), "--noEmit", "--strict", "--target", "es2022", "--module", "nodenext",
         "--moduleResolution", "nodenext", *sources],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
