#!/usr/bin/env python3
"""Reproducer: in a STOW-RS body, a DICOM part that is not recognised as DICOM passes unchanged.

Found by benchmarks/fuzz/run.py (target "payload", oracle phi-survived: 43
planted strings in the output): one bit flipped in the part's Content-Type
("application/dicom" -> "applicat\\xe9on/dicom") and 20 bytes deleted around
the "DICM" magic. The part is then neither declared nor sniffed as DICOM, so
the walker passes it as opaque data, although the body is
``multipart/related; type="application/dicom"`` (every part is DICOM by
declaration) and the part is a readable dataset (File Meta group and all).

Expected (fail closed): inside a multipart/related body whose root type is
application/dicom, a part that cannot be processed as DICOM is blocked.
"""

from __future__ import annotations

import sys

from _common import verdict

from icapdlp.verdict import Blocked
from tests.fuzz import targets
from tests.support import synthetic

BOUNDARY = "fuzzBoundary7Q"


def main() -> int:
    hidden, normal = synthetic.make_ct(31), synthetic.make_ct(32)
    without_magic = hidden.data[:128] + hidden.data[132:]  # preamble, then the File Meta group
    b = BOUNDARY.encode()
    body = (b"--" + b + b"\r\nContent-Type: applicat\xe9on/dicom\r\n\r\n" + without_magic
            + b"\r\n--" + b + b"\r\nContent-Type: application/dicom\r\n\r\n" + normal.data
            + b"\r\n--" + b + b"--\r\n")
    try:
        result = targets.payload_body(f'multipart/related; type="application/dicom"; boundary={BOUNDARY}', (),
                                      body)
    except Blocked as blocked:
        return verdict(False, f"blocked ({blocked.reason.value})")
    out = result.data if result.changed else body
    leaked = [p for p in hidden.phi_strings if p.encode() in out]
    return verdict(bool(leaked), f"{len(leaked)} planted strings of the unrecognised part reach the output")


if __name__ == "__main__":
    sys.exit(main())
