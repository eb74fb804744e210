"""Hostile and malformed input: every case ends in a result or Blocked, never a crash.

Limits are tested at the limit and one past it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icapdlp.dicom.options import DicomLimits
from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.dicom.prescan import scan
from icapdlp.verdict import Blocked, BlockReason
from tests.dicom.helpers import config, run
from tests.support.synthetic import make_ct


def _blocked(data: bytes, limits: DicomLimits | None = None) -> Blocked:
    with pytest.raises(Blocked) as info:
        deidentify_bytes(data, config(limits=limits))
    return info.value


@pytest.mark.parametrize("signature,finding", [(b"MZ\x90\x00", "preamble-executable"),
                                               (b"\x7fELF\x02\x01", "preamble-executable"),
                                               (b"hello", "preamble-nonzero")])
def test_preamble_payload_is_zeroed_and_reported(signature, finding):
    obj = make_ct(1)
    data = signature + obj.data[len(signature):]
    result, _ = run(data)
    assert result.data[:128] == bytes(128)
    assert result.report.cdr_findings[finding] == 1


@pytest.mark.parametrize("tail", [b"PK\x03\x04" + b"zipdata" * 50, b"\x7fELF" + bytes(100), b"\x01\x02\x03"])
def test_trailing_payload_is_dropped(tail):
    obj = make_ct(2, signatures=False)
    result, out = run(obj.data + tail)
    assert tail not in result.data
    assert result.report.cdr_findings["trailing-bytes"] == 1
    assert result.data.endswith(out.PixelData)


def test_trailing_padding_is_dropped():
    obj = make_ct(2, signatures=False)
    padding = struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, 6) + b"SECRET"
    result, _ = run(obj.data + padding)
    assert b"SECRET" not in result.data
    assert result.report.cdr_findings["trailing-padding"] == 1


def test_a_duplicated_element_does_not_end_the_dataset():
    """Real palettes (pydicom's winter.dcm) repeat SOP Instance UID; everything after it used to be
    cut as trailing bytes, leaving an object without its palette. Readers take the second copy."""
    obj = make_ct(3, signatures=False)
    uid = obj.dataset.SOPInstanceUID
    sop = struct.pack("<HH2sH", 0x0008, 0x0018, b"UI", len(uid) + len(uid) % 2)
    at = obj.data.index(sop)
    element = obj.data[at:at + 8 + len(uid) + len(uid) % 2]
    result, out = run(obj.data[:at] + element + obj.data[at:])
    assert obj.surviving(result.data) == []
    assert out.Rows == obj.dataset.Rows and out.PixelData  # the elements after the duplicate are kept
    assert result.report.cdr_findings["trailing-bytes"] == 0


@pytest.mark.parametrize("cut", [140, 300, 1000, -5])
def test_truncated_file_is_blocked(cut):
    obj = make_ct(3, signatures=False)  # -5 then cuts into the Pixel Data value
    assert _blocked(obj.data[:cut]).reason in (BlockReason.UNPARSEABLE_DICOM,)


def test_absurd_element_length_is_blocked():
    obj = make_ct(3)
    marker = b"\x10\x00\x10\x00PN"  # (0010,0010) PN
    at = obj.data.index(marker)
    data = obj.data[:at + 6] + b"\xff\xfe" + obj.data[at + 8:]
    blocked = _blocked(data)
    assert blocked.reason == BlockReason.UNPARSEABLE_DICOM and "exceeds remaining" in blocked.detail
    assert "QUIXOTE" not in str(blocked)


HEAD = (struct.pack("<HH2sH", 0x0008, 0x0016, b"UI", 26) + b"1.2.840.10008.5.1.4.1.1.7\0"
        + struct.pack("<HH2sH", 0x0008, 0x0018, b"UI", 12) + b"1.2.3.4.5.6\0")


def _nested(depth: int) -> bytes:
    """A bare Explicit VR LE dataset with ``depth`` nested undefined-length sequences."""
    open_seq = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return HEAD + open_seq * depth + close * depth


def test_depth_1000_nesting_is_blocked_before_pydicom():
    blocked = _blocked(_nested(1000))
    assert blocked.reason == BlockReason.LIMIT_EXCEEDED and "nesting" in blocked.detail


def test_depth_limit_at_and_past():
    limits = replace(DicomLimits(), max_sequence_depth=5)
    assert scan(_nested(5), limits).max_depth == 5
    run(_nested(5), config(limits=limits))
    assert _blocked(_nested(6), limits).reason == BlockReason.LIMIT_EXCEEDED


def test_element_count_limit_at_and_past():
    obj = make_ct(4)
    count = scan(obj.data, DicomLimits()).elements
    deidentify_bytes(obj.data, config(limits=replace(DicomLimits(), max_elements=count)))
    assert _blocked(obj.data, replace(DicomLimits(), max_elements=count - 1)).reason == BlockReason.LIMIT_EXCEEDED


def test_object_size_limit_at_and_past():
    obj = make_ct(4)
    deidentify_bytes(obj.data, config(limits=replace(DicomLimits(), max_object_bytes=len(obj.data))))
    limits = replace(DicomLimits(), max_object_bytes=len(obj.data) - 1)
    assert _blocked(obj.data, limits).reason == BlockReason.LIMIT_EXCEEDED


def _deflated_with_dataset(dataset: bytes) -> bytes:
    obj = make_ct(5, transfer_syntax="deflated")
    assert obj.data[132:136] == b"\x02\x00\x00\x00"  # File Meta Information Group Length
    meta_end = 144 + struct.unpack_from("<I", obj.data, 140)[0]
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return obj.data[:meta_end] + compressor.compress(dataset) + compressor.flush()


def test_deflate_bomb_is_blocked_not_inflated():
    bomb = HEAD + struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, 200 * 1024 * 1024) + bytes(200 * 1024 * 1024)
    data = _deflated_with_dataset(bomb)
    assert len(data) < 1024 * 1024
    limits = replace(DicomLimits(), max_inflated_bytes=16 * 1024 * 1024)
    blocked = _blocked(data, limits)
    assert blocked.reason == BlockReason.LIMIT_EXCEEDED and "inflates" in blocked.detail


def test_inflate_limit_at_and_past():
    obj = make_ct(5, transfer_syntax="deflated")
    size = len(scan(obj.data, DicomLimits()).dataset)
    deidentify_bytes(obj.data, config(limits=replace(DicomLimits(), max_inflated_bytes=size)))
    assert _blocked(obj.data, replace(DicomLimits(), max_inflated_bytes=size - 1)).reason == BlockReason.LIMIT_EXCEEDED


@pytest.mark.parametrize("data", [
    b"", b"DICM", bytes(128) + b"DICM", bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff",
    bytes(128) + b"DICM" + b"garbage that is not a meta group at all",
    b"%PDF-1.7\n" + bytes(200), b"\x08\x00\x05\x00CS\x0a\x00ISO_IR", b"GIF89a" + bytes(100),
    b"\x08\x00\x16\x00" + b"\xff" * 60,
])
def test_non_dicom_that_starts_like_dicom_is_blocked(data):
    assert _blocked(data).reason in (BlockReason.UNPARSEABLE_DICOM, BlockReason.UNSUPPORTED_ENCODING)


def test_unknown_transfer_syntax_is_unsupported():
    obj = make_ct(6)
    data = obj.data.replace(b"1.2.840.10008.1.2.1\0", b"1.2.3.4.5.6.7.8.9.0\0", 1)
    assert _blocked(data).reason == BlockReason.UNSUPPORTED_ENCODING


_SEED = make_ct(9, rows=4, columns=4, signatures=False).data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(_SEED)))
def test_mutated_inputs_give_result_or_blocked(mutations, cut):
    data = bytearray(_SEED)
    for position, value in mutations:
        data[position] = value
    try:
        result = deidentify_bytes(bytes(data[:cut] if cut > 132 else data), config())
    except Blocked as blocked:
        assert isinstance(blocked.reason, BlockReason)
        return
    assert result.data[:128] == bytes(128) and result.data[128:132] == b"DICM"
