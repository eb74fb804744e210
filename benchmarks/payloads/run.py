#!/usr/bin/env python3
"""Payload benchmark: big DICOM uploads and a 100-instance STOW-RS body through the real server.

Run from the repository root with the project venv:

    .venv/bin/python benchmarks/payloads/run.py [--mib 200] [--instances 100]

Each case starts a fresh ``icapdlp serve`` (one worker, Clean Pixel Data off:
this measures the payload path, not OCR), sends one REQMOD with raw ICAP
bytes from this process, and reads the peak resident set (VmHWM) of the
server process and of its worker from /proc afterwards, so every number
belongs to that case alone. Cases:

- 206 header-only: a multi-frame object of ``--mib`` MiB, 16-bit pixels,
  header inside the 64 KiB preview, ``Allow: 204, 206``: answered from the
  preview with a new prefix and ``use-original-body``.
- full rewrite, header spliced: the same object without ``Allow: 206``:
  spooled; the worker rewrites the header and streams the original pixel
  bytes after it (``icapdlp.adaptation.splice``).
- full rewrite, whole pipeline: the same size with 12-bit pixels and bits
  planted above High Bit, so every pixel must be rewritten: spooled, parsed,
  rebuilt, streamed back.
- pass-through reference: a non-DICOM body of the same size, (a) decided from
  the preview (204) and (b) echoed in full (no preview, no 204) - the floor
  any adaptation of that size is compared with.
- STOW-RS: ``multipart/related; type="application/dicom"`` with
  ``--instances`` 256x256 CT instances, every part de-identified.

Targets (issue #5): peak RSS under 2x the largest object for full rewrites
and under 64 MiB for 206 rewrites. Both the growth over the idle server
(server + worker) and the absolute sum of peaks are printed; an idle server
with one worker already holds about 140 MiB of interpreter and libraries.
"""

from __future__ import annotations

import os

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.adaptation.icap_client import http_request_head, send  # noqa: E402
from tests.payload.helpers import form_body  # noqa: E402
from tests.support.processes import start_icapdlp  # noqa: E402
from tests.support.synthetic import make_ct  # noqa: E402

MiB = 1024 * 1024
CONFIG = """
[server]
preview_size = 65536
[workers]
processes = 1
task_deadline = 600
[limits]
request_timeout = 900
[profile]
clean_pixel_data = false
"""


def proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker_pids(pid: int) -> list[int]:
    """Child processes of ``pid`` (the pool starts workers from helper threads: read every thread)."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return found


def run_case(workdir: Path, name: str, content_type: str, body: bytes, *, preview: int | None, allow: str,
             objects: int = 1) -> dict:
    server = start_icapdlp(CONFIG, workdir / name.replace(" ", "-"))
    try:
        pids = worker_pids(server.pid)
        idle = {pid: proc_kib(pid, "VmRSS") for pid in [server.pid, *pids]}
        # one tiny DICOM first so imports are paid before measuring
        warm = make_ct(999, rows=16, columns=16).data
        send(server.port, "REQMOD", "deid-req", req_head=_head("application/dicom", len(warm)), body=warm,
             preview=4096, allow="204")
        started = time.perf_counter()
        reply = send(server.port, "REQMOD", "deid-req", req_head=_head(content_type, len(body)), body=body,
                     preview=preview, allow=allow, timeout=900)
        seconds = time.perf_counter() - started
        peaks = {pid: proc_kib(pid, "VmHWM") for pid in idle}
    finally:
        server.stop()
    out_bytes = len(reply.body)
    return {
        "case": name, "icap": reply.status, "seconds": seconds, "in_mib": len(body) / MiB,
        "out_mib": out_bytes / MiB, "objects": objects,
        "server_peak": peaks[server.pid] / 1024, "worker_peak": sum(peaks[p] for p in pids) / 1024,
        "growth": sum(peaks[p] - idle[p] for p in idle) / 1024,
    }


def _head(content_type: str, length: int) -> bytes:
    return http_request_head("POST", "/studies", [("Host", "pacs.example"), ("Content-Type", content_type),
                                                  ("Content-Length", str(length))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=200, help="size of the multi-frame object (MiB)")
    parser.add_argument("--instances", type=int, default=100, help="instances in the STOW-RS body")
    args = parser.parse_args()

    frames = max(1, args.mib * MiB // (512 * 512 * 2))
    big = make_ct(1, rows=512, columns=512, frames=frames, bits_stored=16, signatures=False).data
    # 12 of 16 bits with planted high bits: must be rewritten pixel by pixel (no header splice)
    big12 = make_ct(1, rows=512, columns=512, frames=frames, bits_stored=12, signatures=False).data
    not_dicom = (b"%PDF-1.7 synthetic\n" + bytes(range(256)) * (len(big) // 256 + 1))[:len(big)]
    study = [make_ct(2, rows=256, columns=256, instance_number=i + 1).data for i in range(args.instances)]
    stow = form_body("stowBoundary", [(b"Content-Type: application/dicom", d) for d in study])
    workdir = Path(tempfile.mkdtemp(prefix="icapdlp-bench-payloads-"))
    try:
        rows = [
            run_case(workdir, "206 header-only", "application/dicom", big, preview=65536, allow="204, 206"),
            run_case(workdir, "full rewrite, header spliced", "application/dicom", big, preview=65536,
                     allow="204"),
            run_case(workdir, "full rewrite, whole pipeline (12-bit)", "application/dicom", big12,
                     preview=65536, allow="204"),
            run_case(workdir, "non-DICOM, 204 from preview", "application/octet-stream", not_dicom,
                     preview=65536, allow="204", objects=0),
            run_case(workdir, "non-DICOM, full echo", "application/octet-stream", not_dicom,
                     preview=None, allow="", objects=0),
            run_case(workdir, f"STOW-RS {args.instances} instances",
                     'multipart/related; type="application/dicom"; boundary=stowBoundary', stow,
                     preview=4096, allow="204", objects=args.instances),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    largest = len(big) / MiB
    print(f"\nicapdlp payload benchmark: {len(big) / MiB:.0f} MiB multi-frame object "
          f"({frames} frames 512x512x16), "
          f"STOW-RS {args.instances} x {len(study[0]) / 1024:.0f} KiB; 1 worker, Clean Pixel Data off\n")
    header = (f"{'case':38} {'ICAP':>4} {'in MiB':>8} {'out MiB':>8} {'seconds':>8} {'MiB/s':>8} "
              f"{'obj/s':>7} "
              f"{'server pk':>9} {'worker pk':>9} {'growth':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        rate = r["in_mib"] / r["seconds"] if r["seconds"] else 0
        objs = f"{r['objects'] / r['seconds']:.1f}" if r["objects"] else "-"
        print(f"{r['case']:38} {r['icap']:>4} {r['in_mib']:8.1f} {r['out_mib']:8.2f} {r['seconds']:8.2f} "
              f"{rate:8.1f} {objs:>7} {r['server_peak']:9.0f} {r['worker_peak']:9.0f} {r['growth']:7.0f}")
    print("\n(peaks and growth in MiB; growth = peak minus idle RSS, server + worker)")
    partial = rows[0]
    verdict = "MET" if partial["growth"] < 64 else "MISSED"
    print(f"target 206: growth {partial['growth']:.0f} MiB < 64 MiB: {verdict}")
    for full in rows[1:3]:
        peak = full["server_peak"] + full["worker_peak"]
        print(f"target {full['case']}: growth {full['growth']:.0f} MiB < 2 x {largest:.0f} MiB: "
              f"{'MET' if full['growth'] < 2 * largest else 'MISSED'}; "
              f"absolute server+worker peak {peak:.0f} MiB "
              f"({'MET' if peak < 2 * largest else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
