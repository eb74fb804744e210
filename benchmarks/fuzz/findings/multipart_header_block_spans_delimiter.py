#!/usr/bin/env python3
"""Reproducer: a DICOM object hidden in a multipart "header block" passes unchanged.

Found by benchmarks/fuzz/run.py (target "payload", oracle phi-survived) from a
STOW-RS body where a deletion removed the blank line after the first part's
headers. ``parse_multipart`` then looks for the part's CRLFCRLF without
stopping at the next delimiter line, so the "header block" of part 0 runs over
the whole first DICOM object and the second part's delimiter and headers;
``_parse_headers`` skips every line without ':' silently. Only the second
object is seen and de-identified; the first one is copied to the output
inside the header block, PHI included.

Expected behaviour (fail closed): a header block that contains a delimiter
line, or lines that are not header fields, is malformed -> Blocked.
"""

from __future__ import annotations

import sys

from _common import verdict

from icapdlp.verdict import Blocked
from tests.fuzz import targets
from tests.support import synthetic

BOUNDARY = "fuzzBoundary7Q"


def main() -> int:
    first, second = synthetic.make_ct(21), synthetic.make_ct(22)
    assert b"\r\n\r\n" not in first.data, "the hidden object must not contain a blank line"
    b = BOUNDARY.encode()
    body = (b"--" + b + b"\r\nX-Note: the blank line after this header is missing\r\n" + first.data
            + b"\r\n--" + b + b"\r\nContent-Type: application/dicom\r\n\r\n" + second.data
            + b"\r\n--" + b + b"--\r\n")
    try:
        result = targets.payload_body(f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
                                      (), body)
    except Blocked as blocked:
        return verdict(False, f"blocked ({blocked.reason.value})")
    out = result.data if result.changed else body
    leaked = [p for p in first.phi_strings if p.encode() in out]
    return verdict(bool(leaked), f"{len(leaked)} planted strings of the hidden object reach the output")


if __name__ == "__main__":
    sys.exit(main())
