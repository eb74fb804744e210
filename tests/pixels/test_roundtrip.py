"""Every photometric interpretation, bit depth and transfer syntax: redact, write, read back.

OCR is the canned ground truth (no Tesseract) so this runs in seconds; what is
tested is decoding, filling stored values, re-encoding and header truthfulness.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.pixels import pixel_array
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.options import PixelOptions
from icapdlp.report import ObjectReport
from tests.pixels.conftest import truth_reader
from tests.support.burned_in import from_bytes, make_case, to_bytes

# (photometric, bits, signed, frames, planar, source TS, expected TS, expected PI, lossy afterwards)
CASES = [
    ("MONOCHROME2", 8, False, 1, 0, ExplicitVRLittleEndian, ExplicitVRLittleEndian, "MONOCHROME2", False),
    ("MONOCHROME2", 16, True, 1, 0, ExplicitVRLittleEndian, ExplicitVRLittleEndian, "MONOCHROME2", False),
    ("MONOCHROME1", 12, False, 3, 0, RLELossless, RLELossless, "MONOCHROME1", False),
    ("RGB", 8, False, 1, 1, ExplicitVRLittleEndian, ExplicitVRLittleEndian, "RGB", False),
    ("YBR_FULL", 8, False, 2, 0, ExplicitVRLittleEndian, ExplicitVRLittleEndian, "YBR_FULL", False),
    ("PALETTE COLOR", 8, False, 1, 0, ExplicitVRLittleEndian, ExplicitVRLittleEndian, "PALETTE COLOR", False),
    ("RGB", 8, False, 2, 0, JPEGBaseline8Bit, ExplicitVRLittleEndian, "RGB", True),
    ("MONOCHROME2", 8, False, 1, 0, JPEGBaseline8Bit, ExplicitVRLittleEndian, "MONOCHROME2", True),
    ("MONOCHROME2", 12, False, 1, 0, JPEGLSLossless, JPEGLSLossless, "MONOCHROME2", False),
    ("RGB", 8, False, 1, 0, JPEGLSLossless, JPEGLSLossless, "RGB", False),
    ("MONOCHROME2", 8, False, 1, 0, JPEGLSNearLossless, ExplicitVRLittleEndian, "MONOCHROME2", True),
    ("MONOCHROME2", 16, False, 2, 0, JPEG2000Lossless, JPEG2000Lossless, "MONOCHROME2", False),
    ("MONOCHROME2", 12, True, 1, 0, JPEG2000Lossless, JPEG2000Lossless, "MONOCHROME2", False),
    ("MONOCHROME2", 12, False, 1, 0, JPEG2000, ExplicitVRLittleEndian, "MONOCHROME2", True),
    ("RGB", 8, False, 1, 0, RLELossless, RLELossless, "RGB", False),
    # JPEG Lossless has no installed encoder: written uncompressed, still lossless (no "01")
    ("MONOCHROME2", 8, False, 1, 0, JPEGLosslessSV1, ExplicitVRLittleEndian, "MONOCHROME2", False),
    ("MONOCHROME2", 12, False, 2, 0, JPEGLosslessSV1, ExplicitVRLittleEndian, "MONOCHROME2", False),
]
PAD = 3


def _cleaner(case, **kw):
    from tests.support.burned_in import CITIES
    from tests.pixels.conftest import KeywordNer

    return BurnedInTextCleaner(PixelOptions(box_padding=PAD), 1 << 30, ner=KeywordNer({c: "LOCATION" for c in CITIES}),
                               read_words=truth_reader(case.truth), **kw)


def _decoded(ds):
    arr = pixel_array(ds, raw=not ds.file_meta.TransferSyntaxUID.is_encapsulated)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return arr if n > 1 else arr[None]


@pytest.mark.parametrize("pi,bits,signed,frames,planar,ts,out_ts,out_pi,lossy", CASES,
                         ids=[f"{c[0]}-{c[1]}{'s' if c[2] else ''}-{c[3]}f-pc{c[4]}-{c[5].name}" for c in CASES])
def test_redact_and_round_trip(pi, bits, signed, frames, planar, ts, out_ts, out_pi, lossy):
    case = make_case(11, photometric=pi, bits_stored=bits, signed=signed, frames=frames, planar=planar,
                     transfer_syntax=ts, rows=240, cols=320, font_px=(12, 22))
    source = from_bytes(to_bytes(case.dataset))
    before = _decoded(source)
    ds = from_bytes(to_bytes(case.dataset))
    report = ObjectReport()
    _cleaner(case).clean(ds, report)

    out = from_bytes(to_bytes(ds))  # what a receiver reads
    assert out.file_meta.TransferSyntaxUID == out_ts
    assert out.PhotometricInterpretation == out_pi
    assert (str(out.get("LossyImageCompression", "00")) == "01") is lossy
    if int(out.SamplesPerPixel) == 3:
        assert out.PlanarConfiguration == 0
    after = _decoded(out)
    assert after.shape == before.shape and after.dtype == before.dtype

    assert report.pixels_cleaned and report.frames_ocr == frames
    assert report.boxes_by_source["header-match"] >= 4
    changed = np.any((after != before).reshape(after.shape[:3] + (-1,)), axis=-1)
    text = np.zeros(changed.shape[1:], dtype=bool)
    for t in case.truth:
        x0, y0, x1, y1 = t.box
        text[max(0, y0 - PAD):y1 + PAD, max(0, x0 - PAD):x1 + PAD] = True
    for f in range(frames):
        for t in case.phi:  # every PHI box holds one value (the fill) in every frame
            x0, y0, x1, y1 = t.box
            region = after[f, y0:y1, x0:x1].reshape(-1, after.shape[-1] if after.ndim == 4 else 1)
            assert (region == region[0]).all(), t.text
        for t in case.labels:  # allow-listed labels untouched
            x0, y0, x1, y1 = t.box
            assert np.array_equal(after[f, y0:y1, x0:x1], before[f, y0:y1, x0:x1]), t.text
        assert changed[f][~text].mean() < 0.02  # collateral: non-text pixels essentially unchanged
    if not lossy:  # lossless paths: nothing outside the padded text boxes changed at all
        assert not changed[:, ~text].any()


def test_identical_cine_frames_are_read_once_and_all_redacted():
    case = make_case(5, frames=1, rows=200, cols=300, font_px=(12, 20))
    frame = case.dataset.pixel_array
    ds = case.dataset
    ds.NumberOfFrames = 4
    ds.PixelData = np.stack([frame] * 4).tobytes()
    reads = []
    cleaner = _cleaner(case)
    inner = cleaner.read_words
    cleaner.read_words = lambda g, lang: reads.append(1) or inner(g, lang)
    report = ObjectReport()
    cleaner.clean(ds, report)
    assert len(reads) == 1 and report.frames_ocr == 1
    after = ds.pixel_array
    x0, y0, x1, y1 = case.phi[0].box
    for f in range(4):
        assert (after[f, y0:y1, x0:x1] == after.min()).all()


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_generated_jpeg_lossless_is_a_process_14_codestream_that_decodes_to_the_same_values(bits):
    plain = make_case(12, bits_stored=bits, rows=60, cols=90, font_px=(10, 14))
    jpeg = make_case(12, bits_stored=bits, rows=60, cols=90, font_px=(10, 14), transfer_syntax=JPEGLosslessSV1)
    ds = from_bytes(to_bytes(jpeg.dataset))
    assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    from pydicom.encaps import generate_frames

    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert codestream[:4] == b"\xff\xd8\xff\xc3" and codestream[4 + 2] == bits  # SOI, SOF3, precision
    assert np.array_equal(pixel_array(ds), pixel_array(plain.dataset))
