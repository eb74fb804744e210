"""deploy/docker/healthcheck.py, the image's HEALTHCHECK, run as Docker runs it.

Issue 16 item 11: the old check fetched ``/healthz`` from a hard-coded
``127.0.0.1:9344``, so a running but unready icapdlp counted as healthy and
compose started Squid against it. The script is run here as a subprocess with
only the environment a container would give it, against a real ``icapdlp
serve`` on a port its configuration file chose, and against an HTTP listener
that is alive (``/healthz`` 200) but not ready (``/readyz`` 503).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_POLICY
from tests.support.processes import REPO_ROOT, free_port, start_icapdlp

SCRIPT = REPO_ROOT / "deploy" / "docker" / "healthcheck.py"


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The script with ``env`` only (plus what finds Python and this checkout's icapdlp)."""
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, str(SCRIPT)], env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


class AliveNotReady(BaseHTTPRequestHandler):
    """What icapdlp answers while an engine is unusable: alive, not ready."""

    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 503
        body = b'{"ready": false, "checks": {"tesseract": {"ok": false}}}\n' if status == 503 else b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def unready_listener():
    server = ThreadingHTTPServer(("127.0.0.1", 0), AliveNotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def write_policy(directory: Path, metrics: str) -> Path:
    path = directory / "icapdlp.toml"
    path.write_text(f"[metrics]\n{metrics}\n")
    return path


def test_alive_but_not_ready_is_unhealthy(unready_listener, tmp_path):
    config = write_policy(tmp_path, f"port = {unready_listener}")
    result = run_check({"ICAPDLP_CONFIG": str(config)})
    assert result.returncode == 1
    assert f"127.0.0.1:{unready_listener}/readyz: HTTP 503" in result.stderr and "tesseract" in result.stderr


def test_disabled_metrics_listener_is_unhealthy_with_the_reason(tmp_path):
    config = write_policy(tmp_path, "enabled = false")
    result = run_check({"ICAPDLP_CONFIG": str(config)})
    assert result.returncode == 1 and "enabled = false" in result.stderr


def test_a_broken_configuration_is_unhealthy(tmp_path):
    config = write_policy(tmp_path, 'port = "nine"')
    result = run_check({"ICAPDLP_CONFIG": str(config)})
    assert result.returncode == 1 and "configuration" in result.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_ready_server_on_the_port_its_configuration_names(tmp_path):
    port = free_port()
    assert port != 9344
    server = start_icapdlp(E2E_POLICY + f"\n[metrics]\nport = {port}\n", tmp_path / "server",
                           env={"ICAPDLP_METRICS__PORT": str(port)})
    try:
        # what the container has: the policy file, the wildcard host the image sets
        container_env = {"ICAPDLP_CONFIG": str(server.config_path), "ICAPDLP_METRICS__HOST": "0.0.0.0"}
        ready = run_check(container_env)
        assert ready.returncode == 0, ready.stderr
        # a variable moves the probe as it moves the listener: nothing listens there
        moved = run_check({**container_env, "ICAPDLP_METRICS__PORT": str(free_port())})
        assert moved.returncode == 1 and "Connection refused" in moved.stderr
    finally:
        server.stop()
