#!/usr/bin/env python3
"""Reproducer: pydicom warnings quoting element values escape the DICOM JSON path.

Found by benchmarks/fuzz/run.py (target "payload", escaped-warning check) on a
mutated application/dicom+json body. ``PipelineRewriter.rewrite_json`` calls
``Dataset.from_json`` (and ``to_json_dict``) outside ``warnings.catch_warnings``,
unlike the Part-10 path in ``deidentify_bytes``. pydicom warns on invalid
values with messages such as "Invalid value for VR UI: '<the value>'", and
Python prints warnings to stderr, which is the service log: patient data in
logs.

Expected behaviour: no warning leaves the worker task (silence them as the
Part-10 path does, or run pydicom with validation that raises and block).
"""

from __future__ import annotations

import json
import sys
import warnings

from _common import verdict

from icapdlp.verdict import Blocked
from tests.fuzz import targets

PLANTED = "1.2.3.NAMEPHI99Q"  # not a valid UI value: pydicom quotes it in its warning


def main() -> int:
    dataset = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
        "0020000D": {"vr": "UI", "Value": [PLANTED]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
    }
    body = json.dumps([dataset]).encode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            targets.payload_body("application/dicom+json", (), body)
        except Blocked:
            pass
    quoting = [str(w.message) for w in caught if "NAMEPHI99Q" in str(w.message)]
    return verdict(bool(quoting), f"{len(caught)} warnings escaped, {len(quoting)} quote the planted value")


if __name__ == "__main__":
    sys.exit(main())
