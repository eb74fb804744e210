"""A worker process killed mid-request: that request is blocked with a reason, the pool
replaces the worker, and later requests are served."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, readyz, slow_dicom, wait_until, worker_pids
from tests.support import synthetic

ONE_WORKER = """
[workers]
processes = 1
[profile]
clean_pixel_data = false
"""
#: ~30k sequence items: about 2 s of parsing and de-identification in the worker, a wide
#: window in which to kill it
SLOW_ITEMS = 30_000


@pytest.mark.e2e
def test_killing_the_busy_worker_blocks_that_request_and_the_pool_recovers(icapdlp_server):
    server = icapdlp_server(ONE_WORKER)
    (worker,) = worker_pids(server)
    slow = slow_dicom(31, SLOW_ITEMS)
    replies: list = []
    thread = threading.Thread(target=lambda: replies.append(client.upload(server.port, slow)))
    thread.start()
    busy = wait_until(lambda: metric(server, "icapdlp_workers_busy") >= 1, timeout=30)
    assert busy, "the task never reached a worker"
    os.kill(worker, signal.SIGKILL)
    thread.join(60)
    (reply,) = replies
    assert reply.status == 200 and reply.http_status == 403
    assert reply.block_reason == "worker-crashed"
    assert metric(server, "icapdlp_blocks_total", 'reason="worker-crashed"') == 1

    assert wait_until(lambda: len(worker_pids(server)) == 1 and worker_pids(server) != [worker], timeout=60)
    assert wait_until(lambda: readyz(server)[0] == 200, timeout=60), readyz(server)
    obj = synthetic.make_ct(4)
    after = client.upload(server.port, obj.data)
    assert after.status == 200 and after.http_status is None and after.block_reason is None
    assert after.body[128:132] == b"DICM" and obj.surviving(after.body) == []
    assert client.upload(server.port, b"plain text" * 50, "text/plain").status == 204


@pytest.mark.e2e
def test_a_task_past_its_deadline_is_blocked_and_its_worker_replaced(icapdlp_server):
    server = icapdlp_server(ONE_WORKER, env={"ICAPDLP_WORKERS__TASK_DEADLINE": "0.3"})
    (worker,) = worker_pids(server)
    started = time.monotonic()
    reply = client.upload(server.port, slow_dicom(31, SLOW_ITEMS))
    assert reply.block_reason == "deadline-exceeded"
    assert time.monotonic() - started < 15
    assert wait_until(lambda: len(worker_pids(server)) == 1 and worker_pids(server) != [worker], timeout=60)
    small = synthetic.make_ct(6)
    assert client.upload(server.port, small.data).block_reason is None
