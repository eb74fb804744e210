"""Pixel bombs through ``icapdlp serve`` and its real worker pool (issue 12, item 10).

Before: a 5.6 KB JPEG-LS object declaring 12000 x 12000 pixels made one
worker spend 23 s and reach 2.27 GB RSS, and a few such uploads occupied every
worker. Now the decode cost is refused from the header (deterministically,
before any decoder allocates), and each worker runs under a memory cap that
stops whatever a header check could miss.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, wait_until, worker_pids
from tests.support import synthetic
from tests.support.bombs import jpegls_bomb, jpegls_codestream

GiB = 1024**3
#: a generous bound on a verdict that takes milliseconds of work (the header check)
BOMB_SECONDS = 5.0


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing")


@pytest.mark.e2e
@pytest.mark.slow
def test_tiny_pixel_bombs_are_blocked_at_once_and_no_worker_grows(icapdlp_server):
    cap = 3 * GiB
    server = icapdlp_server(f"[workers]\nprocesses = 2\nmax_memory_bytes = {cap}\n")
    workers = worker_pids(server)
    before = {pid: vm_kb(pid, "VmHWM") for pid in workers}
    bomb = jpegls_bomb()
    assert len(bomb) < 10 * 1024

    started = time.monotonic()
    replies: list = []
    threads = [threading.Thread(target=lambda: replies.append(client.upload(server.port, bomb))) for _ in range(4)]
    for thread in threads:  # more bombs than workers, all at once
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - started

    assert [r.block_reason for r in replies] == ["limit-exceeded"] * 4
    assert all(r.http_status == 403 and b"QUIXOTEPHI" not in r.body for r in replies)
    assert elapsed < BOMB_SECONDS
    assert worker_pids(server) == workers  # refused from the header: no worker was lost
    for pid in workers:
        assert vm_kb(pid, "VmHWM") - before[pid] < 64 * 1024  # the 144 MB output was never allocated
        assert vm_kb(pid, "VmHWM") * 1024 < cap
    assert metric(server, "icapdlp_blocks_total", 'reason="limit-exceeded"') == 4

    obj = synthetic.make_ct(5, rows=64, columns=64)  # and ordinary images are still cleaned
    after = client.upload(server.port, obj.data)
    assert after.block_reason is None and after.body[128:132] == b"DICM" and obj.surviving(after.body) == []


@pytest.mark.e2e
@pytest.mark.slow
def test_with_the_header_limits_off_the_worker_cap_still_refuses_before_decoding(icapdlp_server):
    """max_pixel_bytes and the ratio switched off: the worker compares the cost with what its cap leaves."""
    cap = int(1.5 * GiB)
    server = icapdlp_server(f"[workers]\nprocesses = 2\nmax_memory_bytes = {cap}\n"
                            "[dicom_limits]\nmax_pixel_bytes = 8589934592\nmax_decode_ratio = 0\n")
    workers = worker_pids(server)
    before = {pid: vm_kb(pid, "VmHWM") for pid in workers}
    # 48000 x 48000 8-bit: a 2.3 GB output buffer, past the 1.5 GiB cap on its own
    bomb = jpegls_bomb(16, declared=48000, codestream=jpegls_codestream(16))
    neighbour: list = []
    slow = synthetic.make_ct(9, rows=512, columns=512)
    thread = threading.Thread(target=lambda: neighbour.append(client.upload(server.port, slow.data)))
    thread.start()
    reply = client.upload(server.port, bomb)
    thread.join(120)

    assert reply.block_reason == "limit-exceeded"
    assert "left under the worker memory cap" in server.output()
    (other,) = neighbour  # the other connection got its ordinary answer
    assert other.block_reason is None and slow.surviving(other.body) == []
    assert "worker-crashed" not in server.output()
    assert worker_pids(server) == workers  # refused before the cap was met: no worker lost
    for pid in workers:
        assert vm_kb(pid, "VmHWM") * 1024 < cap
        assert vm_kb(pid, "VmHWM") - before[pid] < 256 * 1024
