"""ICAP 206 on a 50 MiB object: header rewritten, pixels untouched, and the server stays small.

The object has PHI only in its header (16-bit pixels, nothing after Pixel
Data), so the policy allows a header-only rewrite. The server must answer
from the 64 KiB preview: a new prefix plus ``use-original-body``, without the
client ever sending the other 50 MiB, and without its memory growing.
"""

from __future__ import annotations

import os

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from tests.adaptation.icap_client import http_request_head, send
from tests.support.processes import start_icapdlp
from tests.support.synthetic import make_ct

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MiB = 1024 * 1024
CONFIG = """
[server]
preview_size = 65536
[workers]
processes = 1
[profile]
clean_pixel_data = false
"""


def peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in bytes."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (the pool starts workers from helper threads: read every thread)."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return found


def io_written(pid: int) -> int:
    with open(f"/proc/{pid}/io") as handle:
        return int(next(line for line in handle if line.startswith("wchar:")).split()[1])


def test_fifty_mib_object_with_phi_only_in_its_header(tmp_path):
    # 512x512 keeps the overlay plane (in the header) small enough for the header to fit the preview
    obj = make_ct(60, rows=512, columns=512, frames=100, bits_stored=16, signatures=False)
    assert len(obj.data) > 50 * MiB
    server = start_icapdlp(CONFIG, tmp_path / "srv")
    try:
        workers = children(server.pid)
        assert workers, "the worker process must be measured too"
        fields = [("Host", "pacs.example"), ("Content-Type", "application/dicom"),
                  ("Content-Length", str(len(obj.data)))]
        # warm the worker (imports) so the measurement below is about this object only
        small = make_ct(61, rows=64, columns=64, bits_stored=16, signatures=False)
        send(server.port, "REQMOD", "deid-req", req_head=http_request_head("POST", "/s", fields[:2] + [
            ("Content-Length", str(len(small.data)))]), body=small.data, preview=65536, allow="204, 206")
        before = {pid: peak_rss(pid) for pid in [server.pid, *workers]}
        written_before = io_written(server.pid)

        reply = send(server.port, "REQMOD", "deid-req", req_head=http_request_head("POST", "/stow", fields),
                     body=obj.data, preview=65536, allow="204, 206")

        assert reply.status == 206, reply.raw_head
        assert reply.use_original_body is not None and len(reply.body) < 64 * 1024
        rebuilt = reply.rebuilt(obj.data)
        assert reply.http_fields["content-length"] == str(len(rebuilt))
        assert obj.surviving(rebuilt) == []
        ds = pydicom.dcmread(DicomBytesIO(rebuilt), defer_size=1024)
        assert ds.PatientIdentityRemoved == "YES"
        pixel_bytes = 512 * 512 * 100 * 2
        assert rebuilt[-pixel_bytes:] == obj.data[-pixel_bytes:]  # pixels identical, never copied
        for pid, was in before.items():
            assert peak_rss(pid) - was < 16 * MiB, f"process {pid} grew by {(peak_rss(pid) - was) // MiB} MiB"
        assert io_written(server.pid) - written_before < 1 * MiB  # sockets, logs: no 50 MiB copy
    finally:
        server.stop()
