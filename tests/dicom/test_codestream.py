"""Metadata segments in encapsulated JPEG / JPEG 2000 frames are removed; the pixels stay (red-team F40).

Frames are made by Pillow with planted COM, EXIF, ICC and vendor APPn
segments; after the pipeline no planted token is left anywhere in the output,
and every frame decodes (Pillow, and pydicom's own decoders) to the same pixels.
"""

from __future__ import annotations

import copy
import io
import struct

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filewriter import dcmwrite

from icapdlp.dicom.codestream import strip_j2k, strip_jpeg
from icapdlp.report import CdrFinding
from icapdlp.verdict import Blocked
from tests.dicom.helpers import run
from tests.support.synthetic import make_ct

TOKEN = b"QWERTPLANT"
JPEG_BASELINE, J2K_LOSSLESS = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90"


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (16, 24), dtype=np.uint8), "L")


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def planted_jpeg(seed: int) -> bytes:
    """Baseline JPEG with JFIF (and a thumbnail), EXIF, COM, ICC APP2 and a vendor APP4 all holding TOKEN."""
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x013B] = TOKEN.decode()  # Artist
    _image(seed).save(buf, "JPEG", quality=90, comment=TOKEN, exif=exif, icc_profile=b"ICC" + TOKEN)
    data = buf.getvalue()
    jfif = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x01\x01" + TOKEN[:3]  # a 1x1 thumbnail of 3 bytes
    assert data[2:4] == b"\xff\xe0"
    app0_end = 4 + struct.unpack_from(">H", data, 4)[0]
    return data[:2] + _segment(0xE0, jfif) + _segment(0xE4, TOKEN) + data[app0_end:]


def _j2k(seed: int, *, tile_comment: bool = False) -> bytes:
    buf = io.BytesIO()
    _image(seed).save(buf, "JPEG2000", comment=TOKEN, no_jp2=True, irreversible=False)
    data = buf.getvalue()
    if tile_comment:  # a COM right after the first SOT, with Psot grown to match
        sot = data.index(b"\xff\x90")
        com = _segment(0x64, b"\x00\x01" + TOKEN)
        psot = struct.unpack_from(">I", data, sot + 6)[0]
        head = bytearray(data[sot:sot + 12])
        if psot:
            struct.pack_into(">I", head, 6, psot + len(com))
        data = data[:sot] + bytes(head) + com + data[sot + 12:]
    return data


def _pixels(frame: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(frame)))


def encapsulated_object(frames: list[bytes], ts: str, seed: int = 90) -> bytes:
    ds = copy.deepcopy(make_ct(seed, signatures=False).dataset)
    ds.Rows, ds.Columns = 16, 24
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.NumberOfFrames = len(frames)
    for tag in list(ds.keys()):
        if tag >> 16 == 0x6000:
            del ds[tag]
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = ts
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def test_jpeg_frame_loses_com_and_every_appn_but_jfif_and_decodes_the_same():
    frame = planted_jpeg(1)
    assert frame.count(TOKEN) >= 4
    clean, removed = strip_jpeg(frame)
    assert TOKEN not in clean and TOKEN[:3] not in clean[:40]
    assert removed == 5  # JFIF thumbnail, APP4, EXIF, ICC, COM
    image = Image.open(io.BytesIO(clean))
    assert [marker for marker, _ in image.applist] == ["APP0"]
    assert "comment" not in image.info
    assert np.array_equal(_pixels(clean), _pixels(frame))


def test_a_clean_jpeg_frame_is_returned_as_is():
    buf = io.BytesIO()
    _image(2).save(buf, "JPEG", quality=90)
    assert strip_jpeg(buf.getvalue()) == (buf.getvalue(), 0)


def test_a_segment_after_the_scan_is_removed_too():
    frame = planted_jpeg(3)
    eoi = frame.rindex(b"\xff\xd9")
    late = frame[:eoi] + _segment(0xFE, TOKEN) + frame[eoi:]
    clean, _ = strip_jpeg(late)
    assert TOKEN not in clean
    assert np.array_equal(_pixels(clean), _pixels(frame))


def test_j2k_comment_in_the_main_and_a_tile_part_header_is_removed_and_psot_fixed():
    frame = _j2k(4, tile_comment=True)
    assert frame.count(TOKEN) == 2
    clean, removed = strip_j2k(frame)
    assert TOKEN not in clean and removed == 2
    assert np.array_equal(_pixels(clean), _pixels(_j2k(4)))
    sot = clean.index(b"\xff\x90")
    psot = struct.unpack_from(">I", clean, sot + 6)[0]
    assert psot == 0 or clean[sot + psot:sot + psot + 2] in (b"\xff\xd9", b"\xff\x90")


def test_j2k_in_the_jp2_file_format_is_blocked():
    buf = io.BytesIO()
    _image(5).save(buf, "JPEG2000")  # JP2 boxes around the codestream
    with pytest.raises(Blocked):
        strip_j2k(buf.getvalue())


@pytest.mark.parametrize("ts, make", [(JPEG_BASELINE, planted_jpeg), (J2K_LOSSLESS, _j2k)],
                         ids=["jpeg", "j2k"])
def test_pipeline_output_keeps_no_segment_and_decodes_to_the_same_frames(ts, make):
    frames = [make(10), make(11)]
    result, out = run(encapsulated_object(frames, ts))
    assert TOKEN not in result.data
    assert result.report.cdr_findings[CdrFinding.CODESTREAM_METADATA] >= 2
    rebuilt = list(generate_frames(out.PixelData, number_of_frames=2))
    for before, after in zip(frames, rebuilt):
        assert np.array_equal(_pixels(after), _pixels(before))
    original = pydicom.dcmread(io.BytesIO(encapsulated_object(frames, ts)))
    assert np.array_equal(out.pixel_array, original.pixel_array)  # pydicom's decoders, offset table read


@pytest.mark.parametrize("wrap", [lambda f: encapsulate([f]), lambda f: f], ids=["items", "bare-stream"])
def test_a_jpeg_stream_under_a_native_transfer_syntax_is_blocked_not_cut_into_pixels(wrap):
    """The a51 "meta says native" case: cutting the stream to the geometry kept its APP4 as pixels."""
    ds = copy.deepcopy(make_ct(14, signatures=False).dataset)
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 8, 8, 7
    for tag in list(ds.keys()):
        if tag >> 16 == 0x6000:
            del ds[tag]
    ds.PixelData = wrap(planted_jpeg(14))
    ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    with pytest.raises(Blocked):
        run(buf.getvalue())


@pytest.mark.parametrize("make", [planted_jpeg, _j2k], ids=["jpeg", "j2k"])
def test_bytes_after_the_end_of_the_codestream_are_dropped(make):
    frame, _ = (strip_jpeg if make is planted_jpeg else strip_j2k)(make(15))
    clean, removed = (strip_jpeg if make is planted_jpeg else strip_j2k)(frame + TOKEN)
    assert clean == frame and removed == 1
