"""The "config" readiness check fails when the files stop giving the running policy, and recovers.

Issue 15: /readyz's "config" check was ``current_settings() is not None``,
which no running server can fail. It now compares the running settings and
key with what a reload would load (``icapdlp.config.drift``). Driven here
over a real socket, with real files, through the health listener and the
``icapdlp_ready_check`` gauge a scrape sets.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from prometheus_client import CollectorRegistry

from icapdlp.config import load_settings
from icapdlp.config.drift import RunningConfigCheck
from icapdlp.config.keys import generate_key_file, load_key
from icapdlp.observability.health import Readiness
from icapdlp.observability.options import MetricsOptions
from icapdlp.observability.wiring import build_observer, start_health_server
from tests.observability.test_health import get
from tests.support.processes import icapdlp_server  # noqa: F401  (the factory fixture)

pytestmark = pytest.mark.timeout(60)

ENV: dict[str, str] = {}  # no ICAPDLP_* variables: the file alone decides


class Running:
    """What the App holds: the settings and key it serves with (a reload replaces both)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reload()

    def reload(self) -> None:
        self.settings = load_settings(self.path, ENV)
        self.key = load_key(self.settings.key)

    def __call__(self):
        return self.settings, self.key


@pytest.fixture
def files(tmp_path):
    key = tmp_path / "icapdlp.key"
    generate_key_file(str(key))
    config = tmp_path / "icapdlp.toml"
    config.write_text(f'[key]\nfile = "{key}"\n\n[profile]\nretain_device_identity = false\n')
    return config, key


async def _ready(port: int) -> tuple[int, dict]:
    status, _, body = await get(port, "/readyz")
    return status, json.loads(body)["checks"]["config"]


def test_readyz_config_fails_on_each_drift_and_recovers(files):
    config, key = files
    running = Running(str(config))
    readiness = Readiness()
    readiness.add("config", RunningConfigCheck(str(config), running, ENV))
    original_config, original_key = config.read_bytes(), key.read_bytes()

    async def main():
        server = await start_health_server(MetricsOptions(port=0), CollectorRegistry(), readiness)
        try:
            seen = [await _ready(server.port)]
            config.write_text("[profile\n")  # broken TOML
            seen.append(await _ready(server.port))
            config.write_bytes(original_config)
            seen.append(await _ready(server.port))
            key.unlink()
            seen.append(await _ready(server.port))
            generate_key_file(str(key))  # a new key where the running one was
            seen.append(await _ready(server.port))
            key.write_bytes(original_key)
            seen.append(await _ready(server.port))
            config.write_text(original_config.decode().replace("= false", "= true"))  # edited, no SIGHUP
            seen.append(await _ready(server.port))
            running.reload()  # the SIGHUP: the running policy becomes the one on disk
            seen.append(await _ready(server.port))
            return seen
        finally:
            await server.close()

    seen = asyncio.run(main())
    assert seen == [
        (200, {"ok": True}),
        (503, {"ok": False, "error": "ConfigFileInvalid"}),
        (200, {"ok": True}),
        (503, {"ok": False, "error": "KeyFileUnreadable"}),
        (503, {"ok": False, "error": "KeyChanged"}),
        (200, {"ok": True}),
        (503, {"ok": False, "error": "ConfigChanged"}),
        (200, {"ok": True}),
    ]


def test_a_key_opened_to_others_fails_the_check_as_a_restart_would(files):
    config, key = files
    check = RunningConfigCheck(str(config), Running(str(config)), ENV)
    assert check() is True
    os.chmod(key, 0o644)  # load_key refuses this at start-up and on reload
    with pytest.raises(Exception) as info:
        check()
    assert type(info.value).__name__ == "KeyFileUnreadable"
    os.chmod(key, 0o600)
    assert check() is True


def test_the_scrape_gauge_follows_the_check(files):
    config, _ = files
    running = Running(str(config))
    observer = build_observer(running.settings, CollectorRegistry(), process_collector=False)
    readiness = Readiness()
    readiness.add("config", RunningConfigCheck(str(config), running, ENV))

    def gauge() -> float:
        return observer.registry.get_sample_value("icapdlp_ready_check", {"check": "config"})

    async def main():
        server = await start_health_server(MetricsOptions(port=0), observer, readiness)
        try:
            await get(server.port, "/metrics")
            before = gauge()
            config.write_text("not = [valid")
            await get(server.port, "/metrics")
            return before, gauge(), observer.registry.get_sample_value("icapdlp_ready")
        finally:
            await server.close()

    assert asyncio.run(main()) == (1.0, 0.0, 0.0)


def test_unchanged_files_are_not_read_again(files, monkeypatch):
    """A probe every second must not parse TOML every second: two stat calls when nothing changed."""
    config, _ = files
    check = RunningConfigCheck(str(config), Running(str(config)), ENV)
    loads = []
    import icapdlp.config.drift as drift

    real = drift.load_settings
    monkeypatch.setattr(drift, "load_settings", lambda *a: loads.append(1) or real(*a))
    for _ in range(5):
        assert check() is True
    assert len(loads) == 1
    config.write_text(config.read_text() + "\n")  # touched: read again
    assert check() is True and len(loads) == 2


# -- a real ``icapdlp serve`` --------------------------------------------------------------------

SERVE_CONFIG = """
[workers]
processes = 1
[profile]
clean_pixel_data = false
"""


def _config_check(server) -> dict:
    from tests.faults.serverctl import http_get

    return json.loads(http_get(server, "/readyz")[1])["checks"]["config"]


@pytest.mark.e2e
def test_a_served_process_reports_a_replaced_key_and_an_unreloaded_edit_until_sighup(icapdlp_server):
    import signal

    from tests.faults.serverctl import wait_until

    server = icapdlp_server(SERVE_CONFIG)
    assert wait_until(lambda: _config_check(server) == {"ok": True}, timeout=60)
    original_key = server.key_path.read_bytes()
    server.key_path.write_text("ab" * 32 + "\n")  # another key, same file, still mode 0600
    assert _config_check(server) == {"ok": False, "error": "KeyChanged"}
    server.key_path.write_bytes(original_key)
    assert _config_check(server) == {"ok": True}
    server.config_path.write_text(SERVE_CONFIG + "retain_device_identity = true\n")
    assert _config_check(server) == {"ok": False, "error": "ConfigChanged"}
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: _config_check(server) == {"ok": True}, timeout=30)
