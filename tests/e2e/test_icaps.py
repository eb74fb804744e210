"""ICAPS: Squid reaches icapdlp over TLS (squid-examples/icaps.conf), both ends verified.

Test certificates come from the openssl CLI: one CA issues icapdlp's server
certificate (name ``icapdlp.internal``) and Squid's client certificate;
icapdlp requires a client certificate from that CA (``tls.client_ca_file``).
Squid resolves ``icapdlp.internal`` through a test hosts file. A second
Squid that trusts a different CA must refuse to use icapdlp (HTTP 500,
nothing forwarded), and a TLS client without a certificate gets no ICAP
answer from icapdlp.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl

import pytest

from tests.e2e.client import via_proxy
from tests.e2e.conftest import E2E_POLICY, IcapLogWatch
from tests.support import synthetic
from tests.support.processes import free_port, start_icapdlp
from tests.support.squid import issue_cert, make_ca, make_shared_dir, start_squid_from_example

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ICAP_NAME = "icapdlp.internal"


@pytest.fixture(scope="module")
def pki():
    directory = make_shared_dir("icapdlp-icaps-")
    ca = make_ca(directory, "icap-ca", "icapdlp e2e ICAPS CA")
    server = issue_cert(directory, "icap-server", ca, [ICAP_NAME])
    client = issue_cert(directory, "squid-client", ca, ["squid"], ip_addresses=(), client=True)
    stranger = make_ca(directory, "other-ca", "a CA Squid must not accept icapdlp from")
    hosts = directory / "hosts"
    hosts.write_text(f"127.0.0.1 {ICAP_NAME}\n")
    hosts.chmod(0o644)
    yield {"dir": directory, "ca": ca, "server": server, "client": client,
           "stranger": stranger, "hosts": hosts}
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def icaps_server(pki, e2e_dir):
    tls_port = free_port()
    config = E2E_POLICY + (
        f'\n[tls]\nenabled = true\nport = {tls_port}\n'
        f'cert_file = "{pki["server"].cert}"\nkey_file = "{pki["server"].key}"\n'
        f'client_ca_file = "{pki["ca"].cert}"\n')
    server = start_icapdlp(config, e2e_dir / "icaps")
    server.tls_port = tls_port
    yield server
    server.stop()


def icaps_squid(pki, tls_port: int, trusted_ca) -> object:
    return start_squid_from_example(
        "icaps.conf",
        substitutions=[
            (f"icaps://{ICAP_NAME}:11344/", f"icaps://{ICAP_NAME}:{tls_port}/"),
            ("/etc/squid/icapdlp/icap-ca.crt", str(trusted_ca.cert)),
            ("/etc/squid/icapdlp/squid-client.crt", str(pki["client"].cert)),
            ("/etc/squid/icapdlp/squid-client.key", str(pki["client"].key)),
        ],
        append=[f"hosts_file {pki['hosts']}"],
    )


@pytest.fixture(scope="module")
def squid_icaps(pki, icaps_server):
    proxy = icaps_squid(pki, icaps_server.tls_port, pki["ca"])
    yield proxy
    proxy.cleanup()


def test_dicom_upload_over_icaps_is_deidentified(squid_icaps, origin):
    original = synthetic.make_ct(41)
    origin.clear()
    watch = IcapLogWatch(squid_icaps)
    reply = via_proxy(squid_icaps.port, "POST", origin.url("/raw/ct.dcm"), original.data,
                      {"Content-Type": "application/dicom"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert original.surviving(got.body) == [] and got.body[128:132] == b"DICM"
    assert watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]
    assert any(f"icaps://{ICAP_NAME}:" in line for line in squid_icaps.icap_log())


def test_binary_upload_over_icaps_is_untouched(squid_icaps, origin):
    data = os.urandom(120_000)
    origin.clear()
    watch = IcapLogWatch(squid_icaps)
    reply = via_proxy(squid_icaps.port, "POST", origin.url("/raw/blob"), data,
                      {"Content-Type": "application/octet-stream"})
    assert reply.status == 200 and origin.wait_received(1)[0].body == data
    # read whole, then released: a 204 where Squid offered one, else an echo
    assert watch.outcomes(1, "/deid-req")[0] in (("REQMOD", "ICAP_ECHO", 204), ("REQMOD", "ICAP_MOD", 200))


def _options_over_tls(port: int, ca, client=None) -> bytes:
    context = ssl.create_default_context(cafile=str(ca.cert))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=ICAP_NAME) as tls:
            request = f"OPTIONS icaps://{ICAP_NAME}/deid-req ICAP/1.0\r\nHost: {ICAP_NAME}\r\n\r\n"
            tls.sendall(request.encode())
            return tls.recv(4096)


def test_icapdlp_requires_a_client_certificate(pki, icaps_server):
    answer = _options_over_tls(icaps_server.tls_port, pki["ca"], pki["client"])
    assert answer.startswith(b"ICAP/1.0 200")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        anonymous = _options_over_tls(icaps_server.tls_port, pki["ca"])
        if not anonymous:  # TLS 1.3 reports the refusal as a closed stream
            raise ConnectionError("closed without an answer")


def test_squid_refuses_an_icap_server_it_cannot_verify(pki, icaps_server, origin):
    proxy = icaps_squid(pki, icaps_server.tls_port, pki["stranger"])
    try:
        origin.clear()
        reply = via_proxy(proxy.port, "POST", origin.url("/raw/unverified"), synthetic.make_ct(42).data,
                          {"Content-Type": "application/dicom"})
        assert reply.status == 500
        assert origin.wait_received(1, timeout=1.0) == []
    finally:
        proxy.cleanup()
