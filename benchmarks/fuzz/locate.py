#!/usr/bin/env python3
"""Triage stored campaign findings: which planted string survived, and in which element.

    .venv/bin/python benchmarks/fuzz/locate.py [benchmarks/results/fuzz/findings.json]

For every ``phi-survived`` finding the input is rebuilt from (seed index, ops),
run through its target again, and the output is read back with pydicom (for a
multipart, zip or gzip payload, every DICOM object inside it is read). Each
surviving planted string is reported with the path of the element that holds
it, e.g. ``(0040,0032) UT at depth 0`` or ``(0008,1030) LO in (0010,1002)[0]``,
or ``raw bytes`` when no parsed element holds it (pixel data, a part pydicom
cannot read). Only tags, VRs and the planted synthetic markers are printed: the
inputs are synthetic, so nothing here is patient data.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import warnings
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

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


def dicom_objects(body: bytes) -> list[bytes]:
    """The DICOM objects inside ``body``: itself, or the members/parts of a wrapper."""
    found = []
    if body[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                return [archive.read(n) for n in archive.namelist()]
        except (zipfile.BadZipFile, OSError, EOFError):
            return [body]
    if body[:2] == b"\x1f\x8b":
        try:
            return [gzip.decompress(body)]
        except (OSError, EOFError):
            return [body]
    start = 0
    while (at := body.find(b"DICM", start)) >= 0:
        found.append(body[max(at - 128, 0):])
        start = at + 4
    return found or [body]


def holders(data: bytes, planted: bytes) -> list[str]:
    """Element paths whose value contains ``planted`` (empty when pydicom cannot find it)."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            paths: list[str] = []
            _search(ds, planted.decode(), "", paths)
            if getattr(ds, "file_meta", None) is not None:
                _search(ds.file_meta, planted.decode(), "meta ", paths)
    except Exception as exc:  # noqa: BLE001 - a triage tool reports what it cannot read
        return [f"unreadable ({type(exc).__name__})"]
    return paths


def _search(ds, needle: str, where: str, paths: list[str]) -> None:
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or ()):
                _search(item, needle, f"{where}{tag}[{i}] ", paths)
            continue
        value = elem.value
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if needle in text:
            depth = where.count("[")
            paths.append(f"{tag} {elem.VR} " + (f"in {where.strip()}" if depth else "at depth 0"))


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else RESULTS / "findings.json"
    planted = planted_strings()
    for finding in json.loads(path.read_text()):
        if finding["kind"] != "phi-survived":
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
            where = [h for obj in dicom_objects(body) if p in obj for h in holders(obj, p)]
            print(f"  {p.decode()}: {', '.join(sorted(set(where))) or 'raw bytes only'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
