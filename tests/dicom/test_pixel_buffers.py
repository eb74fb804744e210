"""Pixel Data is held once: a view of the input, masked in place only when the caller gives it away.

Why: the pixel value is most of a large object. ``deidentify_bytes`` keeps
it as a view of the input (no parse copy), zeroes bits above High Bit in one
pass (in the caller's buffer only with ``owned=True``) and answers with
pieces that are written without a join. These tests pin both halves: the
bytes are exactly those of ``deidentify_bytes`` on an untouched copy, and a
buffer the caller did not give away is never written to.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icapdlp.dicom import reader
from icapdlp.dicom.highbits import CHUNK_PIXELS, mask_high_bits, unused_bits_mask
from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.dicom.prescan import EXPLICIT_LE
from icapdlp.dicom.rebuild import encode
from icapdlp.verdict import Blocked
from tests.support.synthetic import TRANSFER_SYNTAXES, make_ct, make_multiframe

KEY = bytes(range(32))


def config(mode: str = "deidentify") -> PipelineConfig:
    return PipelineConfig(ProfileOptions(clean_pixel_data=False), DicomLimits(), KEY, mode)


def _pixel_piece(output) -> memoryview:
    return memoryview(output.chunks[-1])


@pytest.mark.parametrize("ts", sorted(TRANSFER_SYNTAXES))
@pytest.mark.parametrize("bits_stored", [12, 16])
def test_owned_buffer_gives_the_bytes_of_the_plain_path(ts, bits_stored):
    data = make_ct(41, rows=32, columns=32, frames=2, transfer_syntax=ts, bits_stored=bits_stored,
                   signatures=False).data
    expected = deidentify_bytes(data, config())
    output = deidentify_bytes(bytearray(data), config(), owned=True)
    assert output.data == expected.data
    assert output.size == len(expected.data)
    assert output.report.cdr_findings == expected.report.cdr_findings
    assert output.report.actions == expected.report.actions


def test_owned_dirty_pixels_are_masked_in_the_callers_buffer():
    obj = make_multiframe(42, frames=4, rows=64, columns=64, bits_stored=12, signatures=False)
    data = bytearray(obj.data)
    expected = deidentify_bytes(bytes(data), config()).data
    output = deidentify_bytes(data, config(), owned=True)
    piece = _pixel_piece(output)
    assert piece.obj is data  # the value written out is the input buffer itself, not a copy
    assert output.report.cdr_findings["pixel-high-bits"] == 1
    buffer = io.BytesIO()
    output.write_to(buffer)
    assert buffer.getvalue() == expected


def test_clean_pixels_are_written_from_the_input_without_a_copy():
    data = make_multiframe(43, frames=4, rows=64, columns=64, bits_stored=16, signatures=False).data
    output = deidentify_bytes(data, config())
    assert _pixel_piece(output).obj is data
    assert "pixel-high-bits" not in output.report.cdr_findings
    assert output.data == deidentify_bytes(data, config()).data


def test_a_buffer_not_given_away_is_never_written():
    original = make_multiframe(44, frames=2, rows=64, columns=64, bits_stored=12, signatures=False).data
    data = bytearray(original)
    output = deidentify_bytes(data, config())  # owned defaults to False
    assert bytes(data) == original
    assert _pixel_piece(output).obj is not data
    assert output.data == deidentify_bytes(original, config()).data


def test_report_only_never_writes_an_owned_buffer_and_answers_with_it():
    original = make_ct(45, rows=32, columns=32, bits_stored=12, signatures=False).data
    data = bytearray(original)
    output = deidentify_bytes(data, config("report-only"), owned=True)
    assert bytes(data) == original
    assert output.chunks == [data]
    assert output.report.cdr_findings["pixel-high-bits"] == 1  # counted, not applied


def test_pixels_longer_than_their_geometry_are_cut_from_the_view():
    obj = make_ct(46, rows=32, columns=32, bits_stored=12, signatures=False)
    data = obj.data + b"\x00\xf0" * 8  # a longer Pixel Data value needs its length patched too
    pos = data.rfind(b"\xe0\x7f\x10\x00OW")
    length = int.from_bytes(data[pos + 8:pos + 12], "little")
    patched = data[:pos + 8] + (length + 16).to_bytes(4, "little") + data[pos + 12:]
    expected = deidentify_bytes(patched, config())
    output = deidentify_bytes(bytearray(patched), config(), owned=True)
    assert output.data == expected.data
    assert output.report.cdr_findings["trailing-bytes"] == 1
    assert len(_pixel_piece(output)) == length


@pytest.mark.parametrize("bits, dtype", [(8, "<u1"), (16, "<u2"), (32, "<u4")])
@pytest.mark.parametrize("dirty_at", [None, 0, CHUNK_PIXELS + 3, 3 * CHUNK_PIXELS - 1])
@pytest.mark.parametrize("in_place", [False, True])
def test_mask_high_bits_equals_a_whole_array_mask(bits, dtype, dirty_at, in_place):
    stored = bits - 3
    layout = unused_bits_mask(bits, stored, stored - 1)
    assert layout is not None
    rng = np.random.default_rng(bits)
    pixels = rng.integers(0, 1 << stored, 3 * CHUNK_PIXELS, dtype=np.uint64).astype(dtype)
    if dirty_at is not None:
        pixels[dirty_at] |= np.array(1 << (bits - 1), dtype=dtype)
    tail = b"\x7f" * (pixels.itemsize - 1)  # bytes that do not make a whole sample are kept as they are
    raw = pixels.tobytes() + tail
    buffer = bytearray(raw)
    new, changed = mask_high_bits(buffer if in_place else raw, *layout, in_place=in_place)
    assert changed is (dirty_at is not None)
    expected = (pixels & np.array(layout[1], dtype=dtype)).tobytes() + tail
    assert bytes(new) == expected
    if in_place:
        assert new is buffer and bytes(buffer) == expected
    elif dirty_at is None:
        assert new is raw  # clean: the value itself, no copy


def test_no_mask_when_every_allocated_bit_is_stored():
    assert unused_bits_mask(16, 16, 15) is None
    assert unused_bits_mask(12, 8, 7) is None  # not a native sample size
    assert unused_bits_mask(16, 12, 15) == (np.dtype("<u2"), 0xFFF0)  # high-aligned 12 bits


def test_a_view_that_is_not_the_last_element_is_written_by_pydicom_unchanged():
    ds = copy.deepcopy(make_ct(47, rows=16, columns=16, signatures=False).dataset)
    ds.add_new(0x7FE00020, "OW", b"\x01\x02")  # Coefficients SDVN (retired): after Pixel Data
    expected = encode(copy.deepcopy(ds), EXPLICIT_LE)
    ds["PixelData"]._value = memoryview(bytearray(ds.PixelData))
    assert encode(ds, EXPLICIT_LE) == expected


class _RecordingCleaner:
    """A PixelCleaner that records what it was handed and changes nothing."""

    def __init__(self) -> None:
        self.seen: list[type] = []

    def needs_cleaning(self, ds) -> bool:
        return True

    def clean(self, ds, report) -> None:
        self.seen.append(type(ds.PixelData))


def test_the_pixel_cleaner_is_handed_bytes_not_a_view_of_the_input():
    data = bytearray(make_ct(48, rows=32, columns=32, bits_stored=16, signatures=False).data)
    cleaner = _RecordingCleaner()
    cfg = PipelineConfig(ProfileOptions(clean_pixel_data=True), DicomLimits(), KEY)
    deidentify_bytes(data, cfg, cleaner, owned=True)
    assert cleaner.seen == [bytes]


def test_pixel_data_with_an_odd_explicit_vr_takes_the_plain_parse():
    data = make_ct(49, rows=16, columns=16, bits_stored=16, signatures=False).data
    pos = data.rfind(b"\xe0\x7f\x10\x00OW")
    as_un = data[:pos + 4] + b"UN" + data[pos + 6:]
    output = deidentify_bytes(as_un, config())
    piece = output.chunks[-1]
    assert not (isinstance(piece, memoryview) and piece.obj is as_un)  # pydicom read it, not a view
    assert output.data == deidentify_bytes(data, config()).data  # written back as OW, same object


_MUTATION_SEEDS = [make_ct(50, rows=16, columns=16, frames=2, transfer_syntax=ts, bits_stored=bits,
                           signatures=False).data
                   for ts in ("explicit-le", "implicit-le") for bits in (12, 16)]


def _outcome(data: bytes, *, owned: bool):
    try:
        return deidentify_bytes(bytearray(data) if owned else data, config(), owned=owned).data
    except Blocked as blocked:
        return blocked.reason


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_MUTATION_SEEDS) - 1),
       st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
       st.integers(-40, 40))
def test_view_path_equals_the_plain_pydicom_parse_on_mutated_inputs(seed, mutations, resize):
    """Differential: the pixel view (owned or not) against pydicom reading the pixels itself."""
    data = bytearray(_MUTATION_SEEDS[seed])
    for where, value in mutations:
        data[int(where * len(data))] = value
    data = bytes(data[:len(data) + resize] if resize < 0 else data + bytes(range(resize)))
    viewed, owned = _outcome(data, owned=False), _outcome(data, owned=True)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(reader, "NATIVE_PIXEL_VRS", frozenset())
        plain = _outcome(data, owned=False)
    assert viewed == plain
    assert owned == plain
