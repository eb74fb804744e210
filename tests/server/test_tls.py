"""ICAPS listener: TLS with a generated certificate, optional client certificate check."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from icapdlp.config.server_options import TlsOptions
from icapdlp.errors import ConfigError
from tests.icap import messages as m
from tests.server.harness import ISTAG, IcapClient, ScriptedAdapter, ServerThread, make_settings

pytestmark = pytest.mark.e2e


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "1",
             "-subj", "/CN=icapdlp test CA")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-out", str(d / f"{name}.pem"), "-days", "1")
    return d


def _tls_server(pki, **tls) -> ServerThread:
    options = TlsOptions(enabled=True, port=0, cert_file=str(pki / "server.pem"), key_file=str(pki / "server.key"),
                         **tls)
    return ServerThread(make_settings(tls=options), ScriptedAdapter()).start()


def _tls_client(port: int, pki, with_cert: bool) -> IcapClient:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.check_hostname = False
    if with_cert:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return IcapClient(port, sock=context.wrap_socket(raw))


def test_icaps_with_c_icap_client_and_plain_port_side_by_side(pki):
    server = _tls_server(pki)
    try:
        done = subprocess.run(["c-icap-client", "-i", "127.0.0.1", "-p", str(server.server.tls_port), "-tls",
                               "-tls-no-verify", "-s", "deid-req", "-method", "OPTIONS", "-v"],
                              capture_output=True, timeout=30, text=True)
        assert "ICAP/1.0 200 OK" in done.stderr and f"ISTag: {ISTAG}" in done.stderr
        plain = IcapClient(server.port)
        plain.send(m.SQUID_OPTIONS)
        assert plain.read_response().status == 200
        plain.close()
    finally:
        server.stop()


def test_client_certificate_is_required_when_a_client_ca_is_set(pki):
    server = _tls_server(pki, client_ca_file=str(pki / "ca.pem"))
    try:
        good = _tls_client(server.server.tls_port, pki, with_cert=True)
        good.send(m.reqmod_get_preview0())
        assert good.read_response().status == 204
        good.close()
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            bad = _tls_client(server.server.tls_port, pki, with_cert=False)
            bad.send(m.SQUID_OPTIONS)
            bad.read_response()
    finally:
        server.stop()


def test_unreadable_certificate_is_a_config_error(tmp_path):
    options = TlsOptions(enabled=True, port=0, cert_file=str(tmp_path / "missing.pem"), key_file=str(tmp_path / "k"))
    with pytest.raises(ConfigError, match="tls"):
        ServerThread(make_settings(tls=options), ScriptedAdapter()).start()
