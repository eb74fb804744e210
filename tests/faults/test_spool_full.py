"""Disk full while spooling: the request is blocked with spool-failed, nothing is left on
the full disk, and the server keeps serving (small bodies stay in memory)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, wait_until
from tests.support import synthetic

#: the tmpfs is smaller than one upload, so the spool write fails part-way
TMPFS_SIZE = "128k"


@pytest.fixture
def full_disk(tmp_path):
    """A tiny tmpfs (root can mount one here); else a spool path that cannot be created.

    The second form fails at file creation rather than mid-write, but ends in the
    same fail-closed path; the test says which one ran.
    """
    mountpoint = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mountpoint)],
                             capture_output=True).returncode == 0
    if not mounted:
        blocker = tmp_path / "not-a-directory"
        blocker.write_bytes(b"")
        yield blocker / "spool", "unwritable"
        return
    try:
        yield mountpoint, "tmpfs"
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)


@pytest.mark.e2e
def test_spooling_to_a_full_disk_blocks_with_spool_failed(icapdlp_server, full_disk):
    spool, kind = full_disk
    server = icapdlp_server(f"""
[workers]
processes = 1
[limits]
spool_memory_bytes = 4096
spool_dir = "{spool}"
[profile]
clean_pixel_data = false
""")
    big = synthetic.make_ct(21, rows=512, columns=512).data  # ~530 KiB, far beyond the 128 KiB disk
    reply = client.upload(server.port, big)
    assert reply.status == 200 and reply.http_status == 403, kind
    assert reply.block_reason == "spool-failed", (kind, reply.block_reason)
    assert metric(server, "icapdlp_blocks_total", 'reason="spool-failed"') == 1
    if kind == "tmpfs":
        assert wait_until(lambda: os.listdir(spool) == []), os.listdir(spool)
    small = synthetic.make_ct(22, rows=8, columns=8)
    assert len(small.data) < 4096
    after = client.upload(server.port, small.data)
    assert after.block_reason is None and small.surviving(after.body) == []
    assert server.process.poll() is None
