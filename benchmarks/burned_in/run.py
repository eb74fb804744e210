"""Benchmark: icapdlp's burned-in text cleaner vs presidio-image-redactor, same images, one table.

    .venv/bin/python benchmarks/burned_in/run.py [--images 24] [--seed 1000]

Creates benchmarks/.venv-presidio-image/ on first run (setup_peer.sh), renders
synthetic DICOM images with burned-in PHI (tests/support/burned_in.py), runs
both redactors on the same files and prints seconds per frame (median, p95),
recall (PHI strings whose whole ink box is covered), precision (redaction boxes
that touch PHI), and allow-listed labels left untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from icapdlp.config import Settings  # noqa: E402
from icapdlp.pixels import build_cleaner  # noqa: E402
from icapdlp.report import ObjectReport  # noqa: E402
from tests.support.burned_in import from_bytes, make_case, to_bytes  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = ROOT / "benchmarks" / ".venv-presidio-image" / "bin" / "python"


def generate(folder: Path, n: int, seed: int) -> dict[str, dict]:
    """Single-frame images (presidio reads one frame), grey and colour, 480x640 and 600x800."""
    truth = {}
    for i in range(n):
        photometric = "RGB" if i % 3 == 2 else "MONOCHROME2"
        rows, cols = (600, 800) if i % 2 else (480, 640)
        case = make_case(seed + i, photometric=photometric, rows=rows, cols=cols, font_px=(12, 36))
        name = f"img{i:03d}.dcm"
        (folder / name).write_bytes(to_bytes(case.dataset))
        truth[name] = {"shape": (rows, cols), "truth": [(t.kind, t.box) for t in case.truth]}
    return truth


def score(truth: dict, boxes_by_file: dict[str, list]) -> dict[str, float]:
    covered = total = kept = labels = hits = nboxes = 0
    for name, info in truth.items():
        rows, cols = info["shape"]
        mask = np.zeros((rows, cols), dtype=bool)
        boxes = boxes_by_file.get(name, [])
        for x0, y0, x1, y1 in boxes:
            mask[max(0, y0):y1, max(0, x0):x1] = True
        phi = [b for k, b in info["truth"] if k == "phi"]
        for kind, (x0, y0, x1, y1) in info["truth"]:
            if kind == "phi":
                total += 1
                covered += bool(mask[y0:y1, x0:x1].all())
            else:
                labels += 1
                kept += not mask[y0:y1, x0:x1].any()
        for x0, y0, x1, y1 in boxes:
            nboxes += 1
            hits += any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in phi)
    return {"recall": covered / total, "precision": hits / nboxes if nboxes else 1.0, "labels_kept": kept / labels}


def run_ours(folder: Path) -> tuple[list[float], dict[str, list]]:
    import pydicom

    cleaner = build_cleaner(Settings())
    files = sorted(folder.glob("*.dcm"))
    cleaner.clean(pydicom.dcmread(files[0]), ObjectReport())  # warm-up: model load excluded, as for the peer
    times, boxes = [], {}
    for f in files:
        ds = pydicom.dcmread(f)
        t0 = time.perf_counter()
        cleaner.clean(ds, ObjectReport())
        times.append(time.perf_counter() - t0)
        boxes[f.name] = [(r.box.x0, r.box.y0, r.box.x1, r.box.y1) for r in cleaner.last_result.redactions[0]]
    return times, boxes


def run_peer(folder: Path, omp_one: bool) -> tuple[list[float], dict[str, list]]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    if omp_one:
        env["OMP_THREAD_LIMIT"] = "1"
    proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_worker.py"), str(folder)], env=env,
                          capture_output=True, text=True, check=True)
    times, boxes = [], {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            times.append(rec["seconds"])
            boxes[rec["name"]] = rec["boxes"]
    return times, boxes


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1000, help="first generator seed (tests use < 100)")
    parser.add_argument("--peer-omp1", action="store_true",
                        help="also run the peer with OMP_THREAD_LIMIT=1 (icapdlp's Tesseract setting)")
    args = parser.parse_args()
    subprocess.run(["bash", str(HERE / "setup_peer.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        truth = generate(folder, args.images, args.seed)
        rows = [("icapdlp", *run_ours(folder))]
        rows.append(("presidio-image-redactor", *run_peer(folder, omp_one=False)))
        if args.peer_omp1:
            rows.append(("presidio (OMP_THREAD_LIMIT=1)", *run_peer(folder, omp_one=True)))
    print(f"\n{args.images} synthetic single-frame images (480x640 / 600x800, MONOCHROME2 + RGB, 12-36 px text)\n")
    print(f"{'redactor':32} {'median s/frame':>15} {'p95 s/frame':>12} {'recall':>8} {'precision':>10} "
          f"{'labels kept':>12}")
    for name, times, boxes in rows:
        s = score(truth, boxes)
        print(f"{name:32} {statistics.median(times):15.3f} {p95(times):12.3f} {s['recall']:8.1%} "
              f"{s['precision']:10.1%} {s['labels_kept']:12.1%}")
    ours, peer = statistics.median(rows[0][1]), statistics.median(rows[1][1])
    print(f"\nspeed-up (median per frame): {peer / ours:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
