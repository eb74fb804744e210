"""HTTPS uploads and downloads through squid-examples/ssl-bump.conf, with curl.

The fixture makes two test CAs with the openssl CLI: the interception CA
Squid signs bumped certificates with (the client trusts only it), and the
CA of the HTTPS origin (Squid trusts it for the onward connection). The
origin answers under two names: ``pacs.test`` is in ``bump_hosts``, so its
traffic is decrypted and reaches icapdlp; ``other.test`` is spliced, which
the client proves by verifying the origin's real certificate through the
proxy, and icap.log proves by staying silent.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import ssl
import subprocess

import pydicom
import pytest

from tests.e2e.conftest import IcapLogWatch
from tests.support import synthetic
from tests.support.origin import OriginServer, boundary_of, split_multipart
from tests.support.squid import issue_cert, make_ca, make_shared_dir, start_squid_from_example

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")]

BUMPED, SPLICED = "pacs.test", "other.test"


@pytest.fixture(scope="module")
def pki():
    directory = make_shared_dir("icapdlp-pki-")
    bump_ca = make_ca(directory, "bump-ca", "icapdlp e2e interception CA")
    origin_ca = make_ca(directory, "origin-ca", "icapdlp e2e origin CA")
    origin_cert = issue_cert(directory, "origin", origin_ca, [BUMPED, SPLICED])
    yield {"dir": directory, "bump_ca": bump_ca, "origin_ca": origin_ca, "origin": origin_cert}
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def https_origin(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["origin"].cert, pki["origin"].key)
    server = OriginServer(tls=context).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bump_squid(pki, https_origin, icapdlp):
    hosts = pki["dir"] / "hosts"
    hosts.write_text(f"127.0.0.1 {BUMPED} {SPLICED}\n")
    hosts.chmod(0o644)
    ca = pki["bump_ca"]
    proxy = start_squid_from_example(
        "ssl-bump.conf", icap_port=icapdlp.port,
        replace_lines={
            "sslcrtd_program": ["sslcrtd_program /usr/lib/squid/security_file_certgen"],
            "tls_outgoing_options": [f"tls_outgoing_options min-version=1.2 cafile={pki['origin_ca'].cert}"],
            "acl bump_hosts": [f"acl bump_hosts ssl::server_name {BUMPED}"],
            "acl bump_dst": [f"acl bump_dst dstdomain {BUMPED}"],
            "acl SSL_ports": [f"acl SSL_ports port 443 {https_origin.port}"],
        },
        append=[f"hosts_file {hosts}"],
        http_port_options=f"ssl-bump tls-cert={ca.cert} tls-key={ca.key} "
                          "generate-host-certificates=on dynamic_cert_mem_cache_size=4MB",
    )
    yield proxy
    proxy.cleanup()


def curl(proxy, url: str, trust: str, workdir, *, data: bytes | None = None,
         content_type: str | None = None) -> tuple[int, bytes, str]:
    """(HTTP status, body, content type) of a curl request through the proxy."""
    out = workdir / "curl.out"
    args = ["curl", "-sS", "--max-time", "60", "-x", proxy.proxy_url, "--cacert", str(trust),
            "-o", str(out), "-w", "%{http_code} %{content_type}", "-H", "Expect:"]
    if data is not None:
        payload = workdir / "curl.in"
        payload.write_bytes(data)
        args += ["--data-binary", f"@{payload}", "-H", f"Content-Type: {content_type}"]
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    status, _, ctype = result.stdout.partition(" ")
    return int(status), out.read_bytes(), ctype


def test_https_dicom_upload_to_a_bumped_host_is_deidentified(bump_squid, https_origin, pki, tmp_path):
    original = synthetic.make_ct(31)
    https_origin.clear()
    watch = IcapLogWatch(bump_squid)
    status, _, _ = curl(bump_squid, https_origin.url("/raw/ct.dcm", host=BUMPED), pki["bump_ca"].cert,
                        tmp_path,
                        data=original.data, content_type="application/dicom")
    assert status == 200
    [got] = https_origin.wait_received(1)
    assert original.surviving(got.body) == []
    ds = pydicom.dcmread(io.BytesIO(got.body))
    assert len(ds.PixelData) == len(original.dataset.PixelData)
    assert ("REQMOD", "ICAP_MOD", 200) in watch.outcomes(1)


def test_https_binary_upload_to_a_bumped_host_is_untouched(bump_squid, https_origin, pki, tmp_path):
    data = os.urandom(150_000)
    https_origin.clear()
    watch = IcapLogWatch(bump_squid)
    status, _, _ = curl(bump_squid, https_origin.url("/raw/blob", host=BUMPED), pki["bump_ca"].cert, tmp_path,
                        data=data, content_type="application/octet-stream")
    assert status == 200
    assert https_origin.wait_received(1)[0].body == data
    # read whole, then released: a 204 where Squid offered one, else an echo
    assert {("REQMOD", "ICAP_ECHO", 204), ("REQMOD", "ICAP_MOD", 200)} & set(watch.outcomes(1))


def test_https_wado_download_from_a_bumped_host_is_deidentified(bump_squid, https_origin, pki, tmp_path):
    study = synthetic.make_study(n_series=1, n_instances=2, seed=32)
    path = https_origin.add_study([obj.data for obj in study])
    status, body, content_type = curl(bump_squid, https_origin.url(path, host=BUMPED), pki["bump_ca"].cert,
                                      tmp_path)
    assert status == 200
    parts = split_multipart(body, boundary_of(content_type))
    assert len(parts) == 2
    for obj, part in zip(study, parts):
        assert obj.surviving(part.data) == []
        pydicom.dcmread(io.BytesIO(part.data))


def test_spliced_host_is_tunnelled_untouched_and_never_inspected(bump_squid, https_origin, pki, tmp_path):
    data = os.urandom(100_000)
    https_origin.clear()
    watch = IcapLogWatch(bump_squid)
    # trusting only the origin's CA succeeds only if Squid did not re-sign the connection
    status, _, _ = curl(bump_squid, https_origin.url("/raw/other", host=SPLICED), pki["origin_ca"].cert,
                        tmp_path,
                        data=data, content_type="application/octet-stream")
    assert status == 200
    assert https_origin.wait_received(1)[0].body == data
    assert watch.outcomes(0, timeout=1.0) == []


def test_bumped_host_is_signed_by_the_interception_ca(bump_squid, https_origin, pki, tmp_path):
    """The other side of the splice proof: the origin CA alone does not verify a bumped host."""
    result = subprocess.run(["curl", "-sS", "--max-time", "30", "-x", bump_squid.proxy_url,
                             "--cacert", str(pki["origin_ca"].cert),
                             https_origin.url("/blob/none", host=BUMPED)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 60, result.stderr  # curl: peer certificate cannot be authenticated


def test_a_bumped_host_reached_with_the_sni_of_a_spliced_one_is_still_inspected(bump_squid, https_origin):
    """Red team F43: CONNECT to a bumped host, ClientHello naming a spliced one. Deciding on the SNI
    alone spliced it, and the origin got the planted values; the CONNECT target now bumps it too."""
    original = synthetic.make_ct(33)
    https_origin.clear()
    raw = socket.create_connection(("127.0.0.1", bump_squid.port), timeout=60)
    target = f"{BUMPED}:{https_origin.port}"
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    assert b" 200" in raw.recv(4096).split(b"\r\n")[0]
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # an attacker checks nothing
    with context.wrap_socket(raw, server_hostname=SPLICED) as tls:
        tls.sendall(f"POST /raw/sni.dcm HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/dicom\r\n"
                    f"Content-Length: {len(original.data)}\r\nConnection: close\r\n\r\n".encode() + original.data)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    if answer.startswith(b"HTTP/1.1 403"):
        assert https_origin.wait_received(1, timeout=1.0) == []  # refused: nothing forwarded
        return
    assert answer.startswith(b"HTTP/1.1 200"), answer[:40]
    [got] = https_origin.wait_received(1)
    assert original.surviving(got.body) == []
