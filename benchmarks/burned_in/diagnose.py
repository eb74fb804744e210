"""Why each PHI box of the independent set was missed: OCR did not see it, NER did not label it, or the box was short.

    .venv/bin/python benchmarks/burned_in/diagnose.py [--per-style 3] [--seed 6000] [--styles rotated,us-banner]

Runs icapdlp's cleaner on the set of tests/support/burned_in_independent.py
(no peer, no third-party files) while keeping the OCR words it read, then for
every PHI truth box that is not fully covered prints one line: its style, size,
kind, how much of it the boxes cover, the verdict, and the OCR words lying on it
(text and confidence). Verdicts:

- ``unseen``: no OCR word overlaps the ink box (the text was not read at all);
- ``read, not labelled``: words were read there but none was redacted;
- ``partly labelled``: some words on it were redacted, others not (a value split by OCR or NER);
- ``box short``: every word on it was redacted, yet the boxes do not cover the ink.

The printed words are the synthetic values drawn by the generator, never patient data.
"""

from __future__ import annotations

import argparse
import sys
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pydicom  # noqa: E402

from icapdlp.config import Settings  # noqa: E402
from icapdlp.pixels import build_cleaner  # noqa: E402
from icapdlp.report import ObjectReport  # noqa: E402
from icapdlp.verdict import Blocked  # noqa: E402
from tests.support.burned_in_independent import (  # noqa: E402
    EMPTY_STYLES, TEXT_STYLES, make_case, score, size_bin,
)


def _overlap(a, b) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6000)
    parser.add_argument("--styles", default=",".join(TEXT_STYLES))
    parser.add_argument("--empty", type=int, default=0, help="text-free images per kind (false boxes)")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args()
    styles = args.styles.split(",")
    cases = {}
    for k, style in enumerate(TEXT_STYLES):
        if style in styles:
            for i in range(args.per_style):
                c = make_case(args.seed + 100 * k + i, style)
                cases[f"{c.name}.dcm"] = c
    for k, style in enumerate(EMPTY_STYLES):
        for i in range(args.empty):
            c = make_case(args.seed + 10000 + 100 * k + i, style)
            cases[f"{c.name}.dcm"] = c
    cleaner = build_cleaner(Settings())
    reader = cleaner.read_words
    seen: list = []

    def keep(grey, language):
        words = reader(grey, language)
        seen.extend(words)
        return words

    faint = cleaner.read_faint_words

    def keep_faint(grey, language):
        words = faint(grey, language)
        seen.extend(words)
        return words

    cleaner.read_words = keep
    cleaner.read_faint_words = keep_faint if faint is not None else None
    boxes, blocked, verdicts, cpu = {}, {}, Counter(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in cases.items():
            path = Path(tmp) / name
            case.dataset.save_as(path, enforce_file_format=True)
            ds = pydicom.dcmread(path)
            seen.clear()
            t0 = time.process_time()
            try:
                cleaner.clean(ds, ObjectReport())
                cpu[name] = (time.process_time() - t0) / int(ds.get("NumberOfFrames", 1) or 1)
            except Blocked as exc:
                blocked[name] = str(exc.reason.value)
                continue
            red = cleaner.last_result.redactions
            boxes[name] = {i: [(r.box.x0, r.box.y0, r.box.x1, r.box.y1) for r in rs] for i, rs in red.items()}
            shape = (int(ds.Rows), int(ds.Columns))
            for truth in case.truth:
                f = truth.frame if truth.frame is not None else 0
                fb = boxes[name].get(f, [])
                mask = np.zeros(shape, bool)
                for x0, y0, x1, y1 in fb:
                    mask[y0:y1, x0:x1] = True
                x0, y0, x1, y1 = truth.box
                share = float(mask[y0:y1, x0:x1].mean())
                if truth.phi_kind is None:
                    if share > 0 and not args.quiet:
                        print(f"{case.name:20} {size_bin(truth.size):9} {'non-PHI':12} {share:4.0%} "
                              f"{'LABEL REDACTED':19} {truth.text!r}")
                    continue
                if share >= 1.0:
                    continue
                on = [w for w in seen if _overlap((w.box.x0, w.box.y0, w.box.x1, w.box.y1), truth.box)
                      > 0.3 * w.box.width * w.box.height]
                hit = [any(_overlap((w.box.x0, w.box.y0, w.box.x1, w.box.y1), b) for b in fb) for w in on]
                if not on:
                    verdict = "unseen"
                elif not any(hit):
                    verdict = "read, not labelled"
                elif not all(hit):
                    verdict = "partly labelled"
                else:
                    verdict = "box short"
                masked = share >= 0.8
                verdicts[(verdict, masked)] += 1
                if not args.quiet:
                    words = " ".join(f"{w.text!r}@{w.conf:.0f}/{w.rotation}" for w in on)
                    print(f"{case.name:20} {size_bin(truth.size):9} {truth.phi_kind:12} {share:4.0%} "
                          f"{verdict:19} {truth.text!r:34} <- {words}")
    t = score(cases, boxes, blocked)
    print()
    for (verdict, masked), n in sorted(verdicts.items()):
        print(f"{verdict:20} {'masked, not full' if masked else 'MISSED':18} {n}")
    print(f"\nmasked {t.rate('overall', 'all'):.1%} full {t.rate('overall', 'all', 1):.1%}  "
          f"non-PHI kept {t.labels[0]}/{t.labels[1]}  boxes on text-free frames {t.empty_boxes}  "
          f"outside {t.outside / max(1, t.pixels):.2%}")
    print(f"  CPU s/frame: median {statistics.median(cpu.values()):.3f}, max {max(cpu.values()):.3f} "
          f"({max(cpu, key=cpu.get)}), total {sum(cpu.values()):.1f}")
    for key in sorted(t.groups["style"]):
        print(f"  {key:16} {t.rate('style', key):6.1%} / {t.rate('style', key, 1):6.1%}  n={t.groups['style'][key][2]}")
    for group in ("size", "kind"):
        print("  " + "  ".join(f"{k} {t.rate(group, k):.0%}" for k in sorted(t.groups[group])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
