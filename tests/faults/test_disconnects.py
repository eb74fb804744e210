"""Clients that vanish mid-preview, mid-body, right after 100 Continue, or while waiting
for the answer: no connection, request, spooled file, fd or memory may stay behind."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import fd_count, metric, rss_kb, wait_until
from tests.support import synthetic

#: each way of disconnecting is repeated this often: a leak of one object per
#: disconnect then shows as at least this many fds / files / gauge units
ROUNDS = 12
#: RSS may grow this much over all rounds (allocator noise, lazily built caches);
#: a leaked 300 KiB body per disconnect would exceed it several times over
RSS_GROWTH_BOUND_KB = 24 * 1024
#: fds allowed above the warm baseline (a log file rotation, a pool pipe being replaced)
FD_SLACK = 3


def config(spool_dir) -> str:
    # spool everything past 1 KiB, so every disconnect below leaves a file if cleanup fails
    return f"""
[workers]
processes = 1
[limits]
spool_memory_bytes = 1024
spool_dir = "{spool_dir}"
[profile]
clean_pixel_data = false
"""


async def _disconnect(port: int, body: bytes, where: str) -> None:
    head = client.http_post("/u", "application/dicom", len(body))
    first, rest, _ = client.build_request("REQMOD", "deid-req", head, body, preview=4096)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if where == "mid-preview":
            writer.write(first[:len(first) - 2500])
            await writer.drain()
            await asyncio.sleep(0.05)
            return
        writer.write(first)
        await writer.drain()
        status, _ = await client.read_head(reader)
        assert status == 100, f"expected 100 Continue for a DICOM preview, got {status}"
        if where == "after-100":
            return
        if where == "mid-body":
            writer.write(rest[:len(rest) // 2])
            await writer.drain()
            await asyncio.sleep(0.05)
            return
        if where == "awaiting-answer":
            writer.write(rest)
            await writer.drain()
            await asyncio.sleep(0.02)
            return
        raise ValueError(where)
    finally:
        writer.transport.abort()  # RST-like close: the rudest client


@pytest.mark.e2e
def test_disconnects_leave_no_connections_requests_files_fds_or_memory(icapdlp_server, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    server = icapdlp_server(config(spool))
    obj = synthetic.make_ct(11, rows=384, columns=384)  # ~300 KiB: preview, 100 Continue, spooled rest
    body = obj.data
    # warm up every path once so lazily created objects are in the baseline
    assert client.upload(server.port, body).block_reason is None
    for where in ("mid-preview", "after-100", "mid-body", "awaiting-answer"):
        asyncio.run(_disconnect(server.port, body, where))
    assert wait_until(lambda: metric(server, "icapdlp_connections_open") == 0)
    fds, rss = fd_count(server.pid), rss_kb(server.pid)

    async def held_mid_body() -> list[str]:
        """Proof the test is not vacuous: a half-sent body really sits in the spool dir."""
        head = client.http_post("/u", "application/dicom", len(body))
        first, rest, _ = client.build_request("REQMOD", "deid-req", head, body, preview=4096)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(first)
        assert (await client.read_head(reader))[0] == 100
        writer.write(rest[:len(rest) // 2])
        await writer.drain()
        for _ in range(100):
            if os.listdir(spool):
                break
            await asyncio.sleep(0.02)
        seen = os.listdir(spool)
        writer.transport.abort()
        return seen
    assert asyncio.run(held_mid_body()) != [], "a half-received 300 KiB body was not spooled"

    async def storm():
        for _ in range(ROUNDS):
            await asyncio.gather(*(_disconnect(server.port, body, where)
                                   for where in ("mid-preview", "after-100", "mid-body", "awaiting-answer")))
    asyncio.run(storm())

    assert wait_until(lambda: metric(server, "icapdlp_connections_open") == 0, timeout=30)
    assert wait_until(lambda: metric(server, "icapdlp_requests_in_flight") == 0, timeout=30)
    assert wait_until(lambda: metric(server, "icapdlp_workers_busy") == 0, timeout=30)
    assert wait_until(lambda: os.listdir(spool) == [], timeout=10), os.listdir(spool)
    assert wait_until(lambda: fd_count(server.pid) <= fds + FD_SLACK, timeout=10), (fds, fd_count(server.pid))
    assert rss_kb(server.pid) - rss < RSS_GROWTH_BOUND_KB, (rss, rss_kb(server.pid))
    # and it still serves, correctly
    after = client.upload(server.port, body)
    assert after.block_reason is None and obj.surviving(after.body) == []
    assert os.listdir(spool) == []
