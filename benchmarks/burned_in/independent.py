"""Benchmark on the independent burned-in set (issue 13): icapdlp vs presidio-image-redactor, one run.

    .venv/bin/python benchmarks/burned_in/independent.py [--per-style 6] [--empty 4] [--seed 5000]
        [--rounds 1] [--no-peer] [--no-third-party] [--save DIR]

The set comes from tests/support/burned_in_independent.py (written apart from
the generator the cleaner was tuned on). Both redactors see the same files in
the same run. Reported, per redactor: PHI boxes masked (>= MASKED_SHARE of the
truth box covered) and fully covered, by style, by size and by PHI kind; non-PHI
labels kept (no redaction touching them); boxes on text-free images; redacted
area outside every PHI truth box (an upper bound on pixels changed there);
seconds per frame. presidio-image-redactor finds boxes on the first frame and
applies them to every frame, so its boxes are scored on every frame too.

Then icapdlp alone on real third-party files (pydicom's test files and, when
installed, pydicom-data's): boxes per file (text-free scans such as MR2_UNCR
should get none), and any object blocked.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pydicom  # noqa: E402

from icapdlp.config import Settings  # noqa: E402
from icapdlp.pixels import build_cleaner  # noqa: E402
from icapdlp.report import ObjectReport  # noqa: E402
from icapdlp.verdict import Blocked  # noqa: E402
from run import HERE, PEER_PYTHON, cpu_seconds  # noqa: E402
from tests.support.burned_in_independent import MASKED_SHARE, Case, Tally, make_set, score  # noqa: E402

#: real third-party files expected to carry no burned-in text (any box there is a false box)
TEXT_FREE_THIRD_PARTY = ("MR2_UNCR.dcm", "MR_small.dcm", "CT_small.dcm", "emri_small.dcm", "RG1_UNCR.dcm",
                         "RG3_UNCR.dcm", "693_UNCR.dcm", "liver.dcm", "JPEG2000_UNC.dcm", "SC_rgb.dcm",
                         "MR-SIEMENS-DICOM-WithOverlays.dcm", "rtdose.dcm", "SC_rgb_32bit.dcm",
                         "SC_ybr_full_uncompressed.dcm", "OT-PAL-8-face.dcm")

Boxes = dict[int, list[tuple[int, int, int, int]]]  # frame -> boxes (as score() takes them)


def _save(cases: list[Case], folder: Path) -> dict[str, Case]:
    out = {}
    for case in cases:
        name = f"{case.name}.dcm"
        case.dataset.save_as(folder / name, enforce_file_format=True)
        out[name] = case
    return out


Timings = dict[str, tuple[float, float]]  # file name -> (wall, CPU) seconds per frame, best of the rounds


def run_ours(folder: Path, rounds: int) -> tuple[Timings, dict[str, Boxes], dict[str, str]]:
    """Seconds per frame, boxes per frame, and blocked files with their reason."""
    cleaner = build_cleaner(Settings())
    files = sorted(folder.glob("*.dcm"))
    cleaner.clean(pydicom.dcmread(files[0]), ObjectReport())  # warm-up: model and engine load excluded
    timings: Timings = {}
    boxes: dict[str, Boxes] = {}
    blocked: dict[str, str] = {}
    for _ in range(rounds):
        for f in files:
            ds = pydicom.dcmread(f)
            n = int(ds.get("NumberOfFrames", 1) or 1)
            c0, t0 = cpu_seconds(), time.perf_counter()
            try:
                cleaner.clean(ds, ObjectReport())
            except Blocked as exc:
                blocked[f.name] = str(exc.reason.value)
                continue
            now = ((time.perf_counter() - t0) / n, (cpu_seconds() - c0) / n)
            old = timings.get(f.name, now)
            timings[f.name] = (min(now[0], old[0]), min(now[1], old[1]))
            boxes[f.name] = {i: [(r.box.x0, r.box.y0, r.box.x1, r.box.y1) for r in rs]
                             for i, rs in cleaner.last_result.redactions.items()}
    return timings, boxes, blocked


def run_peer(folder: Path, rounds: int) -> tuple[Timings, dict[str, Boxes], dict[str, str]]:
    """presidio-image-redactor in its venv: seconds per frame, boxes (on every frame), failures."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}  # the peer as it ships
    proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_worker.py"), str(folder), str(rounds)], env=env,
                          capture_output=True, text=True, check=True)
    timings: Timings = {}
    boxes: dict[str, Boxes] = {}
    failed: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        header = pydicom.dcmread(folder / rec["name"], stop_before_pixels=True)
        frames = int(header.get("NumberOfFrames", 1) or 1)
        if "error" in rec:
            failed[rec["name"]] = rec["error"]
            continue
        now = (rec["seconds"] / frames, rec["cpu_seconds"] / frames)
        old = timings.get(rec["name"], now)
        timings[rec["name"]] = (min(now[0], old[0]), min(now[1], old[1]))
        boxes[rec["name"]] = {0: [tuple(b) for b in rec["boxes"]]}
    return timings, boxes, failed


def _pct(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "     -"


GROUPS = ("overall", "style", "size", "kind", "header")


def print_tables(tallies: dict[str, Tally], order: tuple[str, ...] = GROUPS) -> None:
    names = list(tallies)
    head = "".join(f" | {n[:22]:>22} masked / full" for n in names)
    for group in order:
        keys = sorted({k for t in tallies.values() for k in t.groups[group]})
        print(f"\n{group:24} {'n':>5}{head}")
        for key in keys:
            first = tallies[names[0]].groups[group][key]
            rows = [t.groups[group][key] for t in tallies.values()]
            cells = "".join(f" | {'':>15}{_pct(r[0], r[2])} / {_pct(r[1], r[2])}" for r in rows)
            print(f"{key:24} {first[2]:5d}{cells}")
    print()
    for n, t in tallies.items():
        print(f"{n:32} non-PHI kept {_pct(*t.labels)} ({t.labels[1]})   "
              f"boxes on {t.empty_images} text-free frames: {t.empty_boxes}   "
              f"redacted outside PHI boxes: {t.outside / t.pixels:.3%} of pixels")


def third_party(rounds: int = 1) -> None:
    """icapdlp alone on real files: boxes per file and blocked objects."""
    folders = []
    import pydicom.data

    folders.append(Path(pydicom.data.__file__).parent / "test_files")
    try:
        import data_store

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        print("(pydicom-data not installed: only pydicom's own test files)")
    cleaner = build_cleaner(Settings())
    print(f"\n{'third-party file':44} {'frames':>6} {'boxes':>6} {'s/frame':>8}  verdict")
    for folder in folders:
        for f in sorted(folder.glob("*.dcm")):
            try:
                ds = pydicom.dcmread(f)
                if "PixelData" not in ds or not cleaner.needs_cleaning(ds):
                    continue
            except Exception:  # noqa: BLE001 - broken test files are pydicom's own fixtures
                continue
            n = int(ds.get("NumberOfFrames", 1) or 1)
            t0 = time.perf_counter()
            try:
                cleaner.clean(ds, ObjectReport())
                boxes = sum(len(v) for v in cleaner.last_result.redactions.values())
                verdict = "rewritten"
            except Blocked as exc:
                boxes, verdict = 0, f"blocked: {exc.reason.value}"
            dt = (time.perf_counter() - t0) / n
            flag = "  <- expected none" if f.name in TEXT_FREE_THIRD_PARTY and boxes else ""
            print(f"{f.name[:44]:44} {n:6d} {boxes:6d} {dt:8.3f}  {verdict}{flag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=6)
    parser.add_argument("--empty", type=int, default=4,
                        help="text-free images per kind (anatomy, photo, noise)")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-third-party", action="store_true")
    parser.add_argument("--save", help="keep the generated files in this folder")
    args = parser.parse_args()
    if not args.no_peer:
        subprocess.run(["bash", str(HERE / "setup_peer.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.save or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cases = _save(make_set(args.per_style, args.seed, args.empty), folder)
        timings, boxes, blocked = run_ours(folder, args.rounds)
        tallies = {"icapdlp": score(cases, boxes, blocked)}
        times = {"icapdlp": timings}
        if not args.no_peer:
            peer_t, peer_boxes, peer_failed = run_peer(folder, args.rounds)
            tallies["presidio-image-redactor"] = score(cases, peer_boxes, {})  # a failure finds nothing
            times["presidio-image-redactor"] = peer_t
            if peer_failed:
                print(f"presidio-image-redactor failed on {len(peer_failed)} files "
                      f"(scored as no boxes, not timed): {sorted(set(peer_failed.values()))}")
    print(f"\n{len(cases)} objects: {args.per_style} per text style, {args.empty} per text-free kind, "
          f"seed {args.seed}; masked = >= {MASKED_SHARE:.0%} of a PHI box covered, full = all of it")
    if blocked:
        print("icapdlp blocked:", blocked)
    print_tables(tallies)
    print(f"\n{'redactor (seconds per frame)':32} {'median wall':>12} {'p95 wall':>9} {'max wall':>9} "
          f"{'median CPU':>11} {'p95 CPU':>8} {'max CPU':>8}")
    medians = {}
    for n, tm in times.items():
        wall, cpu = [w for w, _ in tm.values()], [c for _, c in tm.values()]
        medians[n] = (statistics.median(wall), statistics.median(cpu))
        print(f"{n:32} {medians[n][0]:12.3f} {float(np.percentile(wall, 95)):9.3f} {max(wall):9.3f} "
              f"{medians[n][1]:11.3f} {float(np.percentile(cpu, 95)):8.3f} {max(cpu):8.3f}")
    if len(medians) == 2:
        (a_wall, a_cpu), (b_wall, b_cpu) = medians.values()
        print(f"speed-up (median per frame): {b_wall / a_wall:.1f}x wall, {b_cpu / a_cpu:.1f}x CPU")
    photo = [tm for n, tm in times["icapdlp"].items() if n.startswith("empty-photo")
             and int(cases[n].dataset.Columns) == 2048]
    if photo:
        print(f"icapdlp, 1536x2048 photographs: max {max(w for w, _ in photo):.2f} s wall, "
              f"{max(c for _, c in photo):.2f} s CPU per frame")
    if not args.no_third_party:
        third_party()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
