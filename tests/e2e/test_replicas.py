"""Horizontal scale: replicas with the same policy and key are interchangeable.

A load balancer may send any request to any replica, and Squid caches
OPTIONS per service URL, so every replica must (1) report the same ISTag and
(2) write byte-identical output for the same input. Two ``icapdlp serve``
processes on different ports, same policy and key, are compared over raw
ICAP; a third with another key is the control that shows the comparison can
fail (different ISTag, different UIDs).
"""

from __future__ import annotations

import re
import socket

import pytest

from tests.e2e.conftest import E2E_POLICY
from tests.support import synthetic
from tests.support.processes import start_icapdlp

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: the whole ICAP response is small here (a few KiB); this bounds a broken server
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def replicas(e2e_dir):
    first = start_icapdlp(E2E_POLICY, e2e_dir / "replica-a")
    second = start_icapdlp(E2E_POLICY, e2e_dir / "replica-b", key_path=first.key_path)
    other_key = start_icapdlp(E2E_POLICY, e2e_dir / "replica-c")
    yield first, second, other_key
    for server in (first, second, other_key):
        server.stop()


def exchange(port: int, request: bytes) -> bytes:
    """Send one ICAP request with ``Connection: close`` and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request)
        chunks, size = [], 0
        while size < MAX_RESPONSE_BYTES:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def options(port: int) -> dict[str, str]:
    answer = exchange(port, (f"OPTIONS icap://127.0.0.1:{port}/deid-req ICAP/1.0\r\n"
                             f"Host: 127.0.0.1\r\nConnection: close\r\n\r\n").encode())
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    assert head[0].startswith("ICAP/1.0 200")
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}


def reqmod(port: int, body: bytes) -> tuple[str, bytes, bytes]:
    """(ICAP status line, encapsulated HTTP head, de-chunked body) for a REQMOD of ``body``."""
    http_head = (f"POST /raw/object HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/dicom\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode()
    icap_head = (f"REQMOD icap://127.0.0.1:{port}/deid-req ICAP/1.0\r\nHost: 127.0.0.1\r\n"
                 f"Connection: close\r\nEncapsulated: req-hdr=0, req-body={len(http_head)}\r\n\r\n").encode()
    answer = exchange(port, icap_head + http_head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    icap_block, _, rest = answer.partition(b"\r\n\r\n")
    status = icap_block.split(b"\r\n", 1)[0].decode("latin-1")
    encapsulated = re.search(rb"Encapsulated:\s*req-hdr=0,\s*req-body=(\d+)", icap_block, re.IGNORECASE)
    assert encapsulated, icap_block
    split = int(encapsulated.group(1))
    return status, rest[:split], dechunk(rest[split:])


def dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        line_end = data.index(b"\r\n", pos)
        size = int(data[pos:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[line_end + 2: line_end + 2 + size]
        pos = line_end + 2 + size + 2


def test_replicas_report_the_same_istag(replicas):
    tags = [options(server.port)["istag"] for server in replicas]
    assert tags[0] == tags[1]
    assert tags[2] != tags[0], "the ISTag reflects the key (by fingerprint)"


def test_replicas_write_byte_identical_output(replicas):
    objects = [synthetic.make_ct(51), synthetic.make_multiframe(52, frames=3)]
    for original in objects:
        results = [reqmod(server.port, original.data) for server in replicas]
        for status, _, body in results:
            assert status.startswith("ICAP/1.0 200"), status
            assert original.surviving(body) == [] and body[128:132] == b"DICM"
        assert results[0][1:] == results[1][1:], "same policy and key: same HTTP head and body bytes"
        assert results[2][2] != results[0][2], "another key gives other pseudonyms and UIDs"
