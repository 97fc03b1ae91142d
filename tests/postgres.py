"""A throwaway PostgreSQL cluster for the test session.

PostgreSQL refuses to run as root, so as root (CI) initdb and pg_ctl run as the
`postgres` user via runuser, in a temporary directory, on a free loopback port.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cluster:
    url: str
    version: str
    directory: Path
    bin_dir: Path
    as_postgres: list[str]
    options: str = ""

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
             *args],
            check=True, capture_output=True,
        )  # fmt: skip

    def pause(self) -> None:
        """Stops the server (an outage); `resume` starts it again on the same port."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._pg_ctl("-l", str(self.directory / "log"), "-o", self.options, "-w", "start")

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_postgres,
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def find_bin_dir() -> Path | None:
    """Debian keeps the server binaries off the PATH, under /usr/lib/postgresql/<v>/bin."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(bin_dir: Path, durable: bool = False) -> Cluster:
    """`durable`: fsync and synchronous commit on, as in production (benchmarks); off
    otherwise, since tests need speed more than crash safety of a throwaway cluster."""
    directory = Path(tempfile.mkdtemp(prefix="arcus-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = directory / "data"
    port = free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*as_postgres, *args], check=True, capture_output=True, text=True
    )
    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(directory / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        run(
            str(bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE arcus_test",
        )
        version = run(str(bin_dir / "postgres"), "--version").stdout.strip()
    except subprocess.CalledProcessError as error:
        log = (directory / "log").read_text() if (directory / "log").exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {error.stderr}\n{log}") from error
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/arcus_test"
    return Cluster(url, version, directory, bin_dir, as_postgres, options)
