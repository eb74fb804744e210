"""Composition root, ``icapdlp serve`` start-up and refusal, ISTag, SIGTERM and SIGHUP."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import time

import pytest

from icapdlp.app import application
from icapdlp.cli import serve
from icapdlp.config import Settings, load_settings
from icapdlp.config.server_options import ServerOptions
from icapdlp.server.istag import MAX_ISTAG_BYTES, make_istag
from tests.app.passthrough_serve import COMMAND as PASSTHROUGH_SERVE
from tests.icap import messages as m
from tests.server.harness import IcapClient
from tests.support.processes import ServerStartError, start_icapdlp

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def options_istag(port: int) -> str:
    client = IcapClient(port)
    try:
        client.send(m.SQUID_OPTIONS)
        return client.read_response().headers["istag"]
    finally:
        client.close()


def test_istag_is_quoted_bounded_and_tracks_the_policy():
    base = Settings()
    tag = make_istag("0.1.0", base.behaviour_digest("fp"))
    assert tag.startswith('"') and tag.endswith('"') and len(tag.encode()) <= MAX_ISTAG_BYTES
    assert tag == make_istag("0.1.0", Settings().behaviour_digest("fp"))  # same config: same tag
    moved = dataclasses.replace(base, server=ServerOptions(host="0.0.0.0", port=1999))
    assert tag == make_istag("0.1.0", moved.behaviour_digest("fp"))  # address is not behaviour
    salted = dataclasses.replace(base, server=ServerOptions(istag_salt="v2"))
    assert tag != make_istag("0.1.0", salted.behaviour_digest("fp"))
    assert tag != make_istag("0.1.0", base.behaviour_digest("other-key"))
    assert tag != make_istag("0.2.0", base.behaviour_digest("fp"))
    long_version = make_istag("1.2.3.dev4567+gabcdef0123456789", base.behaviour_digest("fp"))
    assert len(long_version.encode()) <= MAX_ISTAG_BYTES


def test_two_replicas_with_the_same_config_announce_the_same_istag():
    settings = load_settings(None, environ={"ICAPDLP_KEY__HEX": KEY_HEX, "ICAPDLP_SERVER__PORT": "0"})

    async def istag_of_a_replica() -> str:
        replica = application.App(settings, bytes.fromhex(KEY_HEX), _passthrough(), use_pool=False,
                                 observer=_null())
        await replica.start()
        try:
            return await asyncio.to_thread(options_istag, replica.server.port)
        finally:
            await replica.stop(0)

    assert asyncio.run(istag_of_a_replica()) == asyncio.run(istag_of_a_replica())


def _passthrough():
    from icapdlp.server.passthrough import build_passthrough_adapter

    return application.AdapterFactory(build_passthrough_adapter)


def _null():
    from icapdlp.observability.events import NullObserver

    return NullObserver()


def test_serve_names_every_bad_key_and_exits_non_zero(tmp_path, capsys, monkeypatch):
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'abc'\nno_such_key = 1\n")
    monkeypatch.setenv("ICAPDLP_KEY__HEX", KEY_HEX)
    assert serve.run(argparse.Namespace(config=str(config))) == serve.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "server.port" in err and "server.no_such_key" in err


def test_serve_without_a_key_exits_non_zero(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ICAPDLP_KEY__HEX", raising=False)
    monkeypatch.delenv("ICAPDLP_KEY__FILE", raising=False)
    assert serve.run(argparse.Namespace(config=None)) == serve.EXIT_CONFIG
    assert "icapdlp genkey" in capsys.readouterr().err


@pytest.mark.e2e
def test_serve_subprocess_logs_start_up_answers_and_stops_on_sigterm(tmp_path):
    server = start_icapdlp("[workers]\nprocesses = 1\n", tmp_path, command=PASSTHROUGH_SERVE)
    try:
        istag = options_istag(server.port)
        log = server.output()
        assert f"serving icap://127.0.0.1:{server.port}" in log and f"ISTag {istag}" in log
        key_text = server.key_path.read_text().strip()
        assert key_text not in log
    finally:
        code = server.stop()
    assert code == 0


@pytest.mark.e2e
def test_sighup_swaps_the_istag_and_a_bad_file_keeps_the_old_one(tmp_path):
    server = start_icapdlp("[workers]\nprocesses = 1\n", tmp_path, command=PASSTHROUGH_SERVE)
    try:
        first = options_istag(server.port)
        server.config_path.write_text("[workers]\nprocesses = 1\n[server]\nistag_salt = 'policy-2'\n")
        server.signal(signal.SIGHUP)
        second = _wait_for_istag_change(server.port, first)
        assert second != first
        server.config_path.write_text("[server]\nistag_salt = 3\n")  # wrong type: rejected
        server.signal(signal.SIGHUP)
        _wait_for_log(server, "reload rejected")
        assert options_istag(server.port) == second
        assert "server.istag_salt" in server.output()
    finally:
        assert server.stop() == 0


@pytest.mark.e2e
def test_start_failure_is_reported_with_the_servers_output(tmp_path):
    with pytest.raises(ServerStartError, match="server.port"):
        start_icapdlp("[server]\nport = 'x'\n", tmp_path, command=PASSTHROUGH_SERVE, env={"ICAPDLP_SERVER__PORT": "x"})


def _wait_for_istag_change(port: int, old: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tag = options_istag(port)
        if tag != old:
            return tag
        time.sleep(0.1)
    return old


def _wait_for_log(server, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in server.output()
