#!/usr/bin/env python3
"""Reproducer: DICOM element bytes after the close delimiter of a rewritten form pass unchanged.

Found by benchmarks/fuzz/run.py (target "payload", oracle phi-survived; seed
20261129, case ``[["dup", 4135, 225, 4083]]`` on the "form" seed; again in seed
20261131, and for the preamble in seed 20261132, where a "dup" into the first
delimiter line turned the start of the body into preamble holding file-meta
bytes). A "dup" op
copied the tail of the uploaded DICOM file (Certificate of Signer, whose value
holds a planted string) past the close delimiter, into the multipart epilogue.
The payload walker rewrites the DICOM part and writes the preamble and the
epilogue back byte-identical (``tests/payload/test_walker.py`` pins that), so
the element bytes and their PHI leave with the upload. The epilogue is below
``MAX_PREAMBLE_BYTES`` (1 KiB), so the limit added for a lost delimiter does
not refuse it; it holds no DICM magic, so the embedded-Part-10 check does not
see it either.

Receivers ignore the preamble and the epilogue (RFC 2046 5.1.1), so no DICOM
object leaks; but up to 1 KiB of bytes nobody inspected ride along on every
body that carried DICOM, which is the hiding place the DICOM rebuild closes
for trailing bytes after a dataset.

Expected once fixed (a payload-layer decision): a multipart body that is
rewritten loses its preamble and epilogue (or keeps only a bare CRLF), so no
byte of the original outside the parts survives the rewrite.
"""

from __future__ import annotations

import sys

from _common import verdict

from tests.fuzz import seeds
from tests.fuzz.targets import payload_body
from tests.support import synthetic


def main() -> int:
    dicom = seeds.dicom_bytes()[0]
    planted = next(p for p in synthetic.make_ct(1).phi_strings if p.startswith("CERTSIGNER")).encode()
    at = dicom.find(planted)
    fragment = dicom[at - 12:at + len(planted) + 20]  # Certificate of Signer: header and value
    body = seeds.form_data([(b'Content-Disposition: form-data; name="f"; filename="a.dcm"\r\n'
                             b"Content-Type: application/dicom", dicom)])
    body += fragment + b"\r\n"  # after "--boundary--\r\n": the epilogue
    content_type = f"multipart/form-data; boundary={seeds.BOUNDARY}"
    result = payload_body(content_type, (), body)
    out = result.data if result.changed else body
    assert result.changed, "the DICOM part must have been rewritten"
    return verdict(planted in out, "a planted value in the multipart epilogue of a rewritten body passed")


if __name__ == "__main__":
    sys.exit(main())
