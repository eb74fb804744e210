#!/usr/bin/env python3
"""Reproducer: a kept element whose length field covers its neighbours carries their PHI out.

Found by benchmarks/fuzz/run.py (targets "pipeline" and "payload", oracle
phi-survived; 12-minute campaign, seed 20261126). A corrupted length made an
element the Basic Profile keeps swallow the elements after it: Samples per
Pixel (US, VM 1) with 1026 bytes, Manufacturer (LO, at most 64 characters)
with more than 1000 bytes, Pixel Data longer than Rows x Columns x frames.
The parser reads the swallowed bytes as that element's value, the profile
keeps the element, and the planted values of the swallowed elements (names,
IDs, free text) are written out again inside it.

This script builds the Manufacturer case: its 2-byte length is widened so
that its value runs over Institution Name ... Patient's Name, up to the next
element boundary, so the rest of the object parses normally.

Expected (fail closed): a kept value longer than its VR allows (LO 64 chars,
US/VM 1 two bytes, ...) or Pixel Data longer than its geometry is refused
(Blocked, unparseable-dicom or limit-exceeded), never written out.
"""

from __future__ import annotations

import io
import struct
import sys

from _common import verdict

from pydicom.filereader import data_element_generator

from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.verdict import Blocked
from tests.support import synthetic

MANUFACTURER, PATIENT_ID = 0x00080070, 0x00100020


def main() -> int:
    obj = synthetic.make_ct(1)
    data = bytearray(obj.data)
    meta_end = 132 + 12 + struct.unpack_from("<I", data, 132 + 8)[0]  # after (0002,0000) group length
    elements = {e.tag: e for e in data_element_generator(io.BytesIO(bytes(data[meta_end:])), False, True)}
    manufacturer, patient_id = elements[MANUFACTURER], elements[PATIENT_ID]
    value_at = meta_end + manufacturer.value_tell
    swallow = meta_end + patient_id.value_tell - 8 - value_at  # up to Patient ID's element header
    assert swallow < 0x10000 and swallow % 2 == 0
    struct.pack_into("<H", data, value_at - 2, swallow)
    name_parts = str(obj.dataset.PatientName).split("^")
    config = PipelineConfig(profile=ProfileOptions(clean_pixel_data=False), limits=DicomLimits(),
                            key=bytes(range(32)))
    try:
        out = deidentify_bytes(bytes(data), config).data
    except Blocked as blocked:
        return verdict(False, f"blocked ({blocked.reason.value})")
    leaked = [p for p in name_parts + obj.phi_strings if p.encode() in out]
    return verdict(bool(leaked), f"Manufacturer of {swallow} bytes kept; {len(leaked)} planted values in the output")


if __name__ == "__main__":
    sys.exit(main())
