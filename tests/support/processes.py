"""Start ``icapdlp serve`` as a real subprocess for end-to-end tests.

Usage in a test module (or re-export the fixture from a conftest.py)::

    from tests.support.processes import icapdlp_server  # pytest fixture

    def test_something(icapdlp_server):
        server = icapdlp_server('[profile]\\n...')   # TOML text; port and key are added
        ...  # talk ICAP to 127.0.0.1:server.port
        # stopped (SIGTERM, then SIGKILL) at teardown; server.output() has its log

Or without pytest::

    with start_icapdlp(toml_text, workdir) as server:
        ...

The port and the key are given through ``ICAPDLP_SERVER__PORT`` and
``ICAPDLP_KEY__FILE`` (environment overrides the file), so the TOML text may
contain any section, ``[server]`` included. The key is a fresh random file
with mode 0600. ``start_icapdlp`` returns only once the port accepts
connections and raises ``ServerStartError`` with the server's output if it
exits first or is not up within ``timeout`` seconds.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: how ``icapdlp serve`` is run: exactly the console command, through this interpreter
SERVE_COMMAND: tuple[str, ...] = (sys.executable, "-m", "icapdlp", "serve")
REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerStartError(RuntimeError):
    """The server exited or did not accept connections in time; the message holds its output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def write_key(directory: str | os.PathLike) -> Path:
    """A new random 32-byte hex key file with mode 0600 in ``directory``."""
    path = Path(directory) / f"icapdlp-{secrets.token_hex(4)}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0,
                  process: subprocess.Popen | None = None) -> bool:
    """True once ``host:port`` accepts a connection; False on timeout or if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class ServerProcess:
    """A running ``icapdlp serve``; ``stop()`` ends it by PID."""

    process: subprocess.Popen
    port: int
    host: str
    config_path: Path
    key_path: Path
    log_path: Path
    metrics_port: int
    env: dict[str, str] = field(repr=False, default_factory=dict)
    #: with ``separate_stderr``: stderr goes here and ``log_path`` holds stdout only
    stderr_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """Everything the server wrote to stdout and stderr so far (stdout only with ``separate_stderr``)."""
        return self.log_path.read_text(errors="replace")

    def stderr(self) -> str:
        """What the server wrote to stderr (``separate_stderr=True`` only)."""
        assert self.stderr_path is not None, "start the server with separate_stderr=True"
        return self.stderr_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful), then SIGKILL after ``timeout`` s; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_icapdlp(
    config_toml: str = "",
    workdir: str | os.PathLike | None = None,
    *,
    port: int | None = None,
    key_path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    command: Sequence[str] = SERVE_COMMAND,
    separate_stderr: bool = False,
) -> ServerProcess:
    """Write ``config_toml`` to ``workdir``, start the server on a free 127.0.0.1 port, wait for it.

    ``env`` adds variables (e.g. ``{"ICAPDLP_WORKERS__PROCESSES": "1"}``); the
    parent's ``ICAPDLP_*`` variables are not inherited, so tests are isolated.
    ``separate_stderr`` writes stderr to its own file (``server.stderr()``), for tests
    that check which stream carries what.
    """
    workdir = Path(workdir) if workdir is not None else Path(_mkdtemp())
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    metrics_port = free_port()
    config_path = workdir / "icapdlp.toml"
    config_path.write_text(config_toml)
    key = Path(key_path) if key_path is not None else write_key(workdir)
    log_path = workdir / f"icapdlp-{port}.log"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ICAPDLP_")}
    child_env.update({
        "ICAPDLP_SERVER__HOST": "127.0.0.1",
        "ICAPDLP_SERVER__PORT": str(port),
        "ICAPDLP_METRICS__HOST": "127.0.0.1",
        "ICAPDLP_METRICS__PORT": str(metrics_port),
        "ICAPDLP_KEY__FILE": str(key),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    })
    child_env.update(env or {})
    stderr_path = workdir / f"icapdlp-{port}.stderr" if separate_stderr else None
    with open(log_path, "wb") as log, open(stderr_path or os.devnull, "wb") as err:
        process = subprocess.Popen([*command, "--config", str(config_path)], stdout=log,
                                   stderr=err if separate_stderr else subprocess.STDOUT, env=child_env, cwd=workdir)
    server = ServerProcess(process, port, "127.0.0.1", config_path, key, log_path, metrics_port, child_env,
                           stderr_path)
    if not wait_for_port(port, timeout=timeout, process=process):
        server.stop()
        raise ServerStartError(f"icapdlp serve did not start on port {port} "
                               f"(exit code {process.returncode}):\n{server.output()}")
    return server


def _mkdtemp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="icapdlp-test-")


@pytest.fixture
def icapdlp_server(tmp_path):
    """Factory fixture: ``icapdlp_server(toml_text, **start_icapdlp_kwargs)``; all stopped at teardown."""
    started: list[ServerProcess] = []

    def start(config_toml: str = "", **kwargs) -> ServerProcess:
        server = start_icapdlp(config_toml, tmp_path / f"server{len(started)}", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
