"""The persistent Tesseract engine (pixels.ocr_engine = "library", the default) in a real server:
a library that cannot load stops start-up with the setting's name, and a worker
that dies while recognising is the ordinary worker-crashed path, after which the new worker
starts its own engine and cleans again."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, readyz, rss_kb, wait_until, worker_pids
from tests.support import burned_in
from tests.support.processes import ServerStartError, icapdlp_server  # noqa: F401  (the factory fixture)

OCR_POLICY = """
[workers]
processes = 1
[profile]
clean_pixel_data = true
"""
#: cine frames whose background moves: each is a distinct frame, read by Tesseract in turn,
#: so the worker spends seconds recognising (a wide window to crash it in)
CINE_FRAMES = 24


@pytest.mark.e2e
def test_a_tesseract_library_that_cannot_load_stops_start_up(icapdlp_server, tmp_path):
    """It used to start a server that blocked every image and answered /readyz 503 with no reason (issue 16.5)."""
    missing = tmp_path / "libtesseract.so.5"
    with pytest.raises(ServerStartError, match="pixels.tesseract_library: cannot load") as refused:
        icapdlp_server(OCR_POLICY + f'[pixels]\ntesseract_library = "{missing}"\n')
    assert "exit code 2" in str(refused.value) and "serving" not in str(refused.value)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_worker_dying_of_sigsegv_while_recognising_is_worker_crashed_and_the_next_worker_reads(
        icapdlp_server):
    """SIGSEGV sent while the worker is busy with a many-frame OCR object: what a crash inside
    libtesseract does to the process (the signal, not where it hits, decides the outcome)."""
    server = icapdlp_server(OCR_POLICY)
    assert wait_until(lambda: readyz(server)[0] == 200, timeout=60), readyz(server)
    (worker,) = worker_pids(server)
    rss_ready = rss_kb(worker)  # NER model + one initialised Tesseract engine
    cine = burned_in.to_bytes(burned_in.make_case(3, frames=CINE_FRAMES).dataset)
    replies: list = []
    thread = threading.Thread(target=lambda: replies.append(client.upload(server.port, cine)))
    thread.start()
    assert wait_until(lambda: metric(server, "icapdlp_workers_busy") >= 1, timeout=30)
    time.sleep(0.5)  # past decoding: the worker is reading frames now
    os.kill(worker, signal.SIGSEGV)
    thread.join(60)
    (reply,) = replies
    assert reply.status == 200 and reply.http_status == 403 and reply.block_reason == "worker-crashed"

    assert wait_until(lambda: len(worker_pids(server)) == 1 and worker_pids(server) != [worker], timeout=60)
    assert wait_until(lambda: readyz(server)[0] == 200, timeout=60), readyz(server)
    case = burned_in.make_case(4)
    after = client.upload(server.port, burned_in.to_bytes(case.dataset))
    assert after.status == 200 and after.block_reason is None and after.body[128:132] == b"DICM"
    cleaned = burned_in.from_bytes(after.body).pixel_array
    assert (cleaned != case.dataset.pixel_array).any(), "the new worker redacted nothing"
    # one engine per worker: its RSS stays in the range of the NER model plus one Tesseract
    assert rss_ready < 600_000, f"worker RSS {rss_ready} kB"
