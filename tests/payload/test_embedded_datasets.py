"""Bare datasets behind a prefix, whatever patient elements identify them (issue 12, red team F27).

A bare dataset a few bytes into a MessagePack, CBOR or BSON body, whose
patient sits in Other Patient Names / Other Patient IDs and the birth date (no
Patient's Name or ID element): the receiver takes the binary field out and
pydicom reads it. It passed the old code as opaque binary.
"""

from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.dataset import Dataset

from icapdlp import lenient
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import passes_unopened
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.payload.test_behind_a_prefix import junk
from tests.support.synthetic import to_bytes

NAME, OTHER_ID = "ZORROTEST^DIEGOTEST", "OTHERID4711"


def _other_names_dataset(transfer_syntax: str) -> bytes:
    """A small CT dataset whose patient is only in Other Patient Names / IDs and the birth date."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.2701"
    ds.StudyDate, ds.Modality = "20240102", "CT"
    ds.PatientBirthDate = "19610214"
    ds.add_new(0x00101000, "LO", OTHER_ID)  # Other Patient IDs (retired, still read)
    ds.OtherPatientNames = NAME
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.2702"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2703"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 8, 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(128))
    ds.file_meta = Dataset()
    return to_bytes(ds, transfer_syntax=transfer_syntax, bare=True)


def _pydicom_reads(blob: bytes) -> bool:
    ds = pydicom.dcmread(io.BytesIO(blob), force=True)
    return NAME in str(ds.get("OtherPatientNames", "")) and OTHER_ID in str(ds.get(0x00101000).value)


def _msgpack(blob: bytes) -> tuple[bytes, slice]:
    """{"name": "scan", "file": <bin 32>} as MessagePack writes it, and where the binary sits."""
    head = b"\x82\xa4name\xa4scan\xa4file\xc6" + struct.pack(">I", len(blob))
    return head + blob, slice(len(head), len(head) + len(blob))


def _cbor(blob: bytes) -> tuple[bytes, slice]:
    head = b"\xa2\x64name\x64scan\x64file\x5a" + struct.pack(">I", len(blob))
    return head + blob, slice(len(head), len(head) + len(blob))


def _bson(blob: bytes) -> tuple[bytes, slice]:
    element = b"\x05file\0" + struct.pack("<i", len(blob)) + b"\0"
    body = struct.pack("<i", 4 + len(element) + len(blob) + 1) + element + blob + b"\0"
    return body, slice(4 + len(element), 4 + len(element) + len(blob))


@pytest.mark.parametrize("wrap", [_msgpack, _cbor, _bson], ids=["msgpack", "cbor", "bson"])
@pytest.mark.parametrize("transfer_syntax", ["explicit-le", "explicit-be", "implicit-le"])
def test_a_bare_dataset_in_a_binary_api_field_with_other_patient_names_is_refused(wrap, transfer_syntax):
    blob = _other_names_dataset(transfer_syntax)
    body, where = wrap(blob)
    assert body[where] == blob and _pydicom_reads(blob)  # (what the receiver takes out and reads)
    with pytest.raises(Blocked) as info:
        walk("application/octet-stream", body)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
    assert not passes_unopened("application/msgpack", [], body, PayloadOptions())


def test_the_same_deep_inside_other_binary_is_refused():
    body = junk(200_000) + _other_names_dataset("explicit-le") + junk(5000, seed=2)
    assert lenient.embedded_dataset_offset(body) is not None


def test_overlapping_patient_header_look_alikes_do_not_hide_the_real_one():
    """A value ending in 10 00 right before the Patient's Name header: every start is tried."""
    blob = _other_names_dataset("implicit-le")
    body = junk(64) + b"\x10\x00" + blob
    assert lenient.embedded_dataset_offset(body) is not None


def test_random_and_sample_like_binary_still_pass():
    """A dark 16-bit image (little-endian samples below 64) repeats group-0010 bytes: no dataset."""
    import random

    rng = random.Random(28)
    samples = b"".join(rng.randrange(64).to_bytes(2, "little") for _ in range(40_000))
    for body in (rng.randbytes(300_000), samples):
        assert walk("application/octet-stream", body)[0].body is body
