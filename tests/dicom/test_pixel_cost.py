"""Decode cost from the header, before any decoder runs (issue 12, item 10a).

The bomb is a real 4.8 KB JPEG-LS object declaring 12000 x 12000 pixels. On
the old code the cleaner decoded it (144 MB of output, then OCR of a
144-megapixel frame); here it is refused from its header, so nothing
allocates its output: tracemalloc (which numpy reports to) sees a few
hundred kilobytes at most.
"""

from __future__ import annotations

import copy
import tracemalloc

import pytest
from pydicom import Dataset, dcmread

from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.dicom.pixel_cost import check_decode_cost, cleaning_bytes, decoded_pixel_bytes
from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.options import PixelOptions
from icapdlp.report import ObjectReport
from icapdlp.verdict import Blocked, BlockReason
from tests.support.bombs import jpegls_bomb, jpegls_codestream

MiB = 1024 * 1024


def parse(data: bytes) -> Dataset:
    import io

    return dcmread(io.BytesIO(data))
#: far below the 144 MB a decoder would allocate for the bomb's output
ALLOCATION_CEILING = 8 * MiB


class RecordingReader:
    """OCR stand-in: records that it was asked (it must not be, for a bomb)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, grey, language="eng"):
        self.calls += 1
        return []


def _cleaner(reader, limits=DicomLimits()):
    return BurnedInTextCleaner(PixelOptions(), limits, ner=lambda text: [], read_words=reader)


def _peak_while(func):
    tracemalloc.start()
    try:
        func()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_jpegls_bomb_is_blocked_by_the_pipeline_before_anything_decodes():
    data = jpegls_bomb()
    assert len(data) < 10 * 1024
    reader = RecordingReader()
    config = PipelineConfig(ProfileOptions(), DicomLimits(), b"k" * 32)
    raised = []

    def run():
        try:
            deidentify_bytes(data, config, _cleaner(reader))
        except Blocked as exc:
            raised.append(exc)

    peak = _peak_while(run)
    (blocked,) = raised
    assert blocked.reason is BlockReason.LIMIT_EXCEEDED and "ratio" in blocked.detail
    assert reader.calls == 0 and peak < ALLOCATION_CEILING
    assert b"QUIXOTEPHI" not in blocked.detail.encode()


def test_the_cleaner_applies_the_same_check_itself():
    """A caller that hands the cleaner a dataset directly gets the same refusal from the same rule."""
    ds = parse(jpegls_bomb())
    reader = RecordingReader()
    raised = []

    def run():
        try:
            _cleaner(reader).clean(ds, ObjectReport())
        except Blocked as exc:
            raised.append(exc)

    peak = _peak_while(run)
    (blocked,) = raised
    assert blocked.reason is BlockReason.LIMIT_EXCEEDED and reader.calls == 0 and peak < ALLOCATION_CEILING


def test_a_header_that_lies_about_a_small_codestream_is_refused_from_the_header():
    small = jpegls_codestream(16)
    ds = parse(jpegls_bomb(16, declared=20000, codestream=small))
    with pytest.raises(Blocked) as info:
        check_decode_cost(ds, DicomLimits(), encapsulated=True)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_a_real_small_jpegls_image_still_decodes_and_is_cleaned():
    ds = parse(jpegls_bomb(64))  # 4 KB of black: far above 1000:1, but under the floor
    reader = RecordingReader()
    report = ObjectReport()
    _cleaner(reader).clean(ds, report)
    assert reader.calls == 1 and report.pixels_cleaned


def _image(rows=100, columns=100, samples=1, frames=None, bits=16, stored=None) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated = rows, columns, samples, bits
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = b"\0" * (stored if stored is not None else 2)
    return ds


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, 100 * 100 * 2),
    ({"bits": 1}, 100 * 100),  # unpacked to a byte per pixel when decoded
    ({"bits": 12}, 100 * 100 * 2),
    ({"bits": 32, "samples": 3, "frames": 7}, 100 * 100 * 3 * 7 * 4),
    ({"frames": ""}, 100 * 100 * 2),  # absent or empty Number of Frames is one frame
])
def test_the_decoded_size_is_rows_columns_samples_frames_bytes(kwargs, expected):
    assert decoded_pixel_bytes(_image(**kwargs)) == expected


@pytest.mark.parametrize("broken", [{"rows": 0}, {"columns": 0}, {"frames": -3}])
def test_no_usable_geometry_blocks_pixel_work(broken):
    with pytest.raises(Blocked) as info:
        check_decode_cost(_image(**broken), DicomLimits(), encapsulated=False)
    assert info.value.reason is BlockReason.PIXEL_CLEANING_IMPOSSIBLE


def test_max_pixel_bytes_at_the_limit_and_one_past():
    ds = _image(rows=1000, columns=1000)  # 2,000,000 decoded bytes
    assert check_decode_cost(ds, DicomLimits(max_pixel_bytes=2_000_000), encapsulated=False) == 2_000_000
    with pytest.raises(Blocked) as info:
        check_decode_cost(ds, DicomLimits(max_pixel_bytes=1_999_999), encapsulated=False)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_the_ratio_at_the_limit_and_one_past_and_only_for_encapsulated_data():
    limits = DicomLimits(max_decode_ratio=1000, decode_ratio_floor_bytes=1024)
    decoded = 1000 * 1000 * 2
    at_limit = _image(rows=1000, columns=1000, stored=decoded // 1000)
    assert check_decode_cost(at_limit, limits, encapsulated=True) == decoded
    past = _image(rows=1000, columns=1000, stored=decoded // 1000 - 1)
    with pytest.raises(Blocked) as info:
        check_decode_cost(past, limits, encapsulated=True)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED
    assert check_decode_cost(past, limits, encapsulated=False) == decoded  # native: stored is decoded
    assert check_decode_cost(past, DicomLimits(max_decode_ratio=0), encapsulated=True) == decoded  # off


def test_small_images_are_exempt_from_the_ratio():
    blank = _image(rows=1000, columns=1000, stored=2)  # 1,000,000:1, but only 2 MB decoded
    assert check_decode_cost(blank, DicomLimits(decode_ratio_floor_bytes=2_000_000), encapsulated=True)
    with pytest.raises(Blocked):
        check_decode_cost(blank, DicomLimits(decode_ratio_floor_bytes=1_999_999), encapsulated=True)


def test_cleaning_costs_ten_times_one_frame_and_three_times_many():
    assert cleaning_bytes(100, 1) == 1000
    assert cleaning_bytes(6400, 64) == 3 * 6400 + 7 * 100


def test_the_defaults_are_the_documented_ones():
    limits = DicomLimits()
    assert (limits.max_pixel_bytes, limits.max_decode_ratio, limits.decode_ratio_floor_bytes) == (
        512 * MiB, 1000, 32 * MiB)
    assert copy.copy(limits) == limits


HEADROOM_SCRIPT = r"""
import resource
from pydicom import Dataset
from icapdlp.dicom.options import DicomLimits
from icapdlp.dicom.pixel_cost import address_space_left, check_decode_cost
from icapdlp.verdict import Blocked

assert address_space_left() is None  # uncapped: nothing to compare with
with open("/proc/self/statm") as handle:
    in_use = int(handle.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (in_use + 1024**3, resource.RLIM_INFINITY))
left = address_space_left()
assert 0.9 * 1024**3 < left <= 1024**3, left

def image(side, frames=1):
    ds = Dataset()
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.BitsAllocated, ds.NumberOfFrames = 1, 8, frames
    ds.PixelData = b"\0" * 2
    return ds

fits = image(8000)  # 64 MB decoded: about 640 MB to clean
assert check_decode_cost(fits, DicomLimits(), encapsulated=False) == 64_000_000
cine = image(1000, frames=200)  # 200 MB decoded in small frames: about 607 MB to clean
assert check_decode_cost(cine, DicomLimits(), encapsulated=False) == 200_000_000
too_big = image(12000)  # 144 MB decoded in one frame: about 1.4 GB to clean, more than the 1 GiB left
try:
    check_decode_cost(too_big, DicomLimits(), encapsulated=False)
except Blocked as exc:
    print(exc.reason.value)
"""


def test_a_capped_worker_refuses_what_would_not_fit_under_its_cap():
    """Under RLIMIT_AS the cost is compared with the address space left, before a decoder could hit the cap."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", HEADROOM_SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "limit-exceeded"
