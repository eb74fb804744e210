"""Resident memory of one icapdlp worker process per OCR engine, in a real server.

    .venv/bin/python benchmarks/burned_in/worker_rss.py [--images 8]

Starts ``icapdlp serve`` with one worker and clean_pixel_data on, once per
``pixels.ocr_engine``, and prints the worker's VmRSS when ready (NER model
loaded; with "library" also the worker's one initialised Tesseract engine) and
after cleaning ``--images`` generated burned-in uploads. The "pytesseract"
engine's Tesseract lives in short-lived child processes and is not in this
number (each child peaks at its own RSS while it runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.faults import icap_client as client  # noqa: E402
from tests.faults.serverctl import readyz, rss_kb, wait_until, worker_pids  # noqa: E402
from tests.support import burned_in  # noqa: E402
from tests.support.processes import start_icapdlp  # noqa: E402

POLICY = "[workers]\nprocesses = 1\n[profile]\nclean_pixel_data = true\n[pixels]\nocr_engine = \"{engine}\"\n"


def measure(engine: str, images: int) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_icapdlp(POLICY.format(engine=engine), tmp)
        try:
            if not wait_until(lambda: readyz(server)[0] == 200, timeout=120):
                raise SystemExit(f"{engine}: server never ready")
            (worker,) = worker_pids(server)
            ready = rss_kb(worker)
            for seed in range(1000, 1000 + images):
                reply = client.upload(server.port, burned_in.to_bytes(burned_in.make_case(seed).dataset))
                if reply.block_reason is not None:
                    raise SystemExit(f"{engine}: upload blocked ({reply.block_reason})")
            return ready, rss_kb(worker)
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    print(f"{'ocr_engine':12} {'worker RSS ready (MB)':>22} {f'after {args.images} images (MB)':>24}")
    for engine in ("library", "pytesseract"):
        ready, after = measure(engine, args.images)
        print(f"{engine:12} {ready / 1024:22.1f} {after / 1024:24.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
