#!/usr/bin/env python3
"""Triage stored campaign findings: which planted string survived, and in which element.

    .venv/bin/python benchmarks/fuzz/locate.py [benchmarks/results/fuzz/findings.json]

For every ``phi-survived`` finding the input is rebuilt from (seed index, ops),
run through its target again, and the output is read back with pydicom (for a
multipart, zip or gzip payload, every DICOM object inside it is read). Each
surviving planted string is reported with the path of the element that holds
it, e.g. ``(0040,0032) UT at top level`` or ``(0008,1030) LO at (0010,1002)[0]``,
or ``raw bytes`` when no parsed element holds it (pixel data, a part pydicom
cannot read). Only tags, VRs and the planted synthetic markers are printed: the
inputs are synthetic, so nothing here is patient data.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.fuzz.oracle import dicom_objects, holders, planted_tags  # noqa: E402
from benchmarks.fuzz.run import RESULTS, Campaign, _op_from_json, planted_strings  # noqa: E402
from icapdlp.verdict import Blocked  # noqa: E402
from tests.fuzz import mutations, seeds  # noqa: E402
from tests.fuzz.targets import TARGETS, payload_body  # noqa: E402


def output_of(finding: dict) -> bytes | None:
    """Re-run one stored finding's input through its target and return the output bytes."""
    name = finding["target"]
    pool = Campaign([name], __import__("random").Random(0)).seeds[name]
    ops = [_op_from_json(op) for op in finding["ops"]]
    raw = bytes.fromhex(finding["raw_hex"]) if finding.get("raw_hex") else None
    data = raw if raw is not None else mutations.apply(pool[finding["seed_index"]], ops, pool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if name == "payload":
                _, content_type, codings, _ = seeds.payload_seeds()[finding["seed_index"]]
                result = payload_body(content_type, codings, data)
                return result.data if result.changed else data
            out = TARGETS[name].run(data)
        except Blocked:
            return None
    return out if isinstance(out, bytes) else getattr(out, "data", None)


def main(argv: list[str]) -> int:
    """Locate the survivors of every stored case (findings.json, or accepted.json when named)."""
    path = Path(argv[1]) if len(argv) > 1 else RESULTS / "findings.json"
    planted = planted_strings()
    for finding in json.loads(path.read_text()):
        if finding["kind"] not in ("phi-survived", "relabelled", "plain-form-field", "pixel-data"):
            print(f"{finding['signature']}: not a phi-survived finding; see its trace_tail")
            continue
        body = output_of(finding)
        print(f"{finding['target']} seed {finding['seed_index']} ops {finding['ops']}")
        if body is None:
            print("  now refused (Blocked)")
            continue
        survived = [p for p in planted if p in body]
        if not survived:
            print("  no planted string survives any more")
        for p in survived:
            where = [h for obj in dicom_objects(body) if p in obj for h in holders(obj, p) or ()]
            text = sorted({f"({t >> 16:04X},{t & 0xFFFF:04X}) {vr} at {path}" for t, vr, path in where})
            planted_at = sorted(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in planted_tags().get(p, ()))
            print(f"  {p.decode()} (planted under {', '.join(planted_at) or '?'}): "
                  f"{', '.join(text) or 'raw bytes only'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
