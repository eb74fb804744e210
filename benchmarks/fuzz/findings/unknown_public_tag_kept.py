#!/usr/bin/env python3
"""Reproducer: PHI under an undefined even-group tag survives de-identification.

Found by benchmarks/fuzz/run.py (target "pipeline", oracle phi-survived) from a
single bit flip in a tag: Institution Name (0008,0080) became (0008,0880),
which no edition of the standard defines. The de-identifier acts on tags it
finds in Table E.1-1 and on private tags, and keeps everything else, so the
value passes with its PHI. The same happens for any tag that is corrupted or
chosen to be outside the dictionary (the fuzzer also saw (2008,0080),
(F03C,9F63), (2800,5200) and (00EC,1001) carry planted values through).

Expected behaviour (fail closed): remove (or block on) standard-group elements
whose tag is not in the data dictionary, as is done for private elements that
are not known safe.
"""

from __future__ import annotations

import struct
import sys

from _common import verdict

from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from tests.support import synthetic


def main() -> int:
    obj = synthetic.make_ct(1)
    hospital = str(obj.dataset.InstitutionName)
    assert hospital in obj.phi_strings, "Institution Name is a planted value"
    data = bytearray(obj.data)
    tag = struct.pack("<HH", 0x0008, 0x0080) + b"LO"
    at = data.find(tag)
    assert at > 0, "Institution Name not found in the synthetic object"
    data[at + 3] ^= 0x08  # (0008,0080) -> (0008,0880): one bit, as the fuzzer did
    config = PipelineConfig(profile=ProfileOptions(clean_pixel_data=False), limits=DicomLimits(),
                            key=bytes(range(32)))
    out = deidentify_bytes(bytes(data), config).data
    return verdict(hospital.encode() in out,
                   "value of undefined tag (0008,0880) passes de-identification unchanged")


if __name__ == "__main__":
    sys.exit(main())
