"""Running the service as a user does: `python -m service ...` in its own process."""

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent


def service_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GRPC_LISTEN")}
    env.update(overrides)
    return env


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=cwd,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_until_serving(address: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                said = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"server exited: {said}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise TimeoutError(f"server at {address} did not start")


@dataclass
class Served:
    address: str
    process: subprocess.Popen[bytes]
    stdout: Path  # with a terminal, what the terminal showed
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@contextmanager
def served(cwd: Path, terminal: bool = False, **env: str) -> Iterator[Served]:
    """`python -m service serve` on a free loopback port, stopped with SIGTERM.

    Output goes to files (a pipe nobody reads could fill and stall the server);
    with `terminal`, stdout is a pseudo-terminal, as under `make run`.
    """
    address = f"127.0.0.1:{free_port()}"
    stdout, stderr = cwd / "serve.stdout", cwd / "serve.stderr"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        leader, follower = pty.openpty() if terminal else (None, None)
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=cwd,
            env=service_env(GRPC_LISTEN=address, **env),
            stdout=follower if terminal else out,
            stderr=err,
        )
    served = Served(address, process, stdout, stderr)
    try:
        wait_until_serving(address, process)
        if leader is not None:
            stdout.write_bytes(_drain(leader))
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for fd in (leader, follower):
            if fd is not None:
                os.close(fd)


def _drain(fd: int) -> bytes:
    data = b""
    while select.select([fd], [], [], 0.2)[0]:
        data += os.read(fd, 65536)
    return data
