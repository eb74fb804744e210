"""Explicit VR Big Endian input written Little Endian: every value swapped exactly once.

The values are asymmetric (0x0001 is not 0x0100), so a missing swap and a
double swap both show. Each object is run with pixel cleaning off and with a
cleaner that writes the frames back through the real encoder, which re-labels
the object Little Endian (the case that used to skip the LUT swap).
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom import Dataset, Sequence
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, generate_uid

from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.pixels.encode import write_back
from icapdlp.pixels.frames import decode
from icapdlp.report import ObjectReport
from tests.dicom.helpers import config

LUT = np.array([0x0001, 0x0100, 0x1234, 0xFF00, 0x00FF, 0x0102], dtype=np.uint16)
SEGMENTED = np.array([0, 2, 0x0100, 0x0001, 1, 3, 0x0102], dtype=np.uint16)  # discrete + linear
CREATOR = "ICAPDLP TEST"


class WriteBackCleaner:
    """Decodes every frame and writes it back with the project's encoder (no boxes): the
    transfer syntax becomes Explicit VR Little Endian, as after a real redaction."""

    def needs_cleaning(self, ds: Dataset) -> bool:
        return True

    def clean(self, ds: Dataset, report: ObjectReport) -> None:
        write_back(ds, decode(ds, 1 << 30))
        report.pixels_cleaned = True


def _be(values, dtype: str = ">u2") -> bytes:
    return np.asarray(values).astype(dtype).tobytes()


def make_big_endian(bits: int = 16) -> tuple[bytes, np.ndarray]:
    """A palette-colour object with asymmetric values in every byte-order-dependent place."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["be-sop"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["be-study"])
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 2, 3
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "PALETTE COLOR" if bits == 16 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    pixels = np.array([[1, 0x0100, 2], [0x0102, 5, 0x0201]], dtype=np.uint32 if bits == 32 else np.uint16)
    ds.DiffusionBValue = 1.5  # FD
    ds.ReferencePixelX0 = -2  # SL
    ds.FrameIncrementPointer = 0x00181063  # AT
    if bits == 16:
        for colour in ("Red", "Green", "Blue"):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [len(LUT), 0, 16])
            setattr(ds, f"{colour}PaletteColorLookupTableData", _be(LUT))
            setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", _be(SEGMENTED))
        modality_lut = Dataset()
        modality_lut.LUTDescriptor = [len(LUT), 0, 16]
        modality_lut.add_new(0x00283006, "OW", _be(LUT))  # LUT Data, nested
        ds.VOILUTSequence = Sequence([modality_lut])
        waveform = Dataset()
        waveform.WaveformBitsAllocated, waveform.WaveformSampleInterpretation = 16, "SS"
        waveform.NumberOfWaveformChannels, waveform.NumberOfWaveformSamples = 1, len(LUT)
        waveform.WaveformData = _be(LUT)
        ds.WaveformSequence = Sequence([waveform])
        ds.private_block(0x0009, CREATOR, create=True).add_new(0x01, "OW", _be(LUT))
    ds.PixelData = _be(pixels, ">u4" if bits == 32 else ">u2")
    ds["PixelData"].VR = "OW"
    buf = io.BytesIO()
    ds.preamble = bytes(128)
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue(), pixels


def _run(data: bytes, cleaner) -> Dataset:
    cfg = config(clean_pixel_data=cleaner is not None, retain_safe_private=True,
                 safe_private_creators=(CREATOR,))
    out = pydicom.dcmread(io.BytesIO(deidentify_bytes(data, cfg, cleaner).data))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    return out


def _le(value: bytes) -> list[int]:
    return np.frombuffer(value, "<u2").tolist()


@pytest.mark.parametrize("cleaner", [None, WriteBackCleaner()], ids=["no-cleaning", "cleaned"])
def test_every_big_endian_value_is_swapped_once(cleaner):
    data, pixels = make_big_endian()
    out = _run(data, cleaner)
    assert np.array_equal(out.pixel_array, pixels)
    for colour in ("Red", "Green", "Blue"):
        assert _le(out[f"{colour}PaletteColorLookupTableData"].value) == LUT.tolist()
        assert _le(out[f"Segmented{colour}PaletteColorLookupTableData"].value) == SEGMENTED.tolist()
    assert _le(out.VOILUTSequence[0][0x00283006].value) == LUT.tolist()
    assert _le(out.WaveformSequence[0].WaveformData) == LUT.tolist()
    assert _le(out[0x00091001].value) == LUT.tolist()  # a private OW the profile keeps
    assert out.DiffusionBValue == 1.5 and out.ReferencePixelX0 == -2
    assert out.FrameIncrementPointer == 0x00181063
    assert out.RedPaletteColorLookupTableDescriptor == [len(LUT), 0, 16]


def test_32_bit_pixels_are_swapped_in_4_byte_units():
    data, pixels = make_big_endian(bits=32)
    out = _run(data, None)  # the cleaner decodes 8 and 16 bits only
    assert np.array_equal(out.pixel_array, pixels)


def test_private_un_values_of_big_endian_input_are_not_kept():
    """An UN value's unit is unknown, so it cannot be swapped: removed, not kept wrong."""
    data, _ = make_big_endian()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.private_block(0x0009, CREATOR).add_new(0x02, "UN", b"\x00\x01\x01\x00")
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    out = _run(buf.getvalue(), None)
    assert 0x00091001 in out and 0x00091002 not in out


def _input_lut(ds: Dataset, keyword: str) -> list[int]:
    return np.frombuffer(ds[keyword].value, ">u2").tolist()  # the standard's reading of OW in BE


@pytest.mark.parametrize("name", ["OBXXXX1A_expb.dcm", "OBXXXX1A_expb_2frame.dcm", "gdcm-US-ALOKA-16_big.dcm",
                                  "rtdose_expb.dcm", "SC_rgb_expb_32bit_2frame.dcm", "liver_expb.dcm"])
@pytest.mark.parametrize("cleaned", [False, True], ids=["no-cleaning", "cleaned"])
def test_real_big_endian_files_decode_as_their_input(name, cleaned):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip("pydicom-data is not installed")  # requirements/dev.txt pins it
    source = pydicom.dcmread(path)
    bits = int(source.BitsAllocated)
    cleaner = WriteBackCleaner() if cleaned and bits in (8, 16) else None
    out = _run(open(path, "rb").read(), cleaner)
    assert np.array_equal(out.pixel_array, source.pixel_array)
    for keyword in ("RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
                    "BluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
                    "SegmentedGreenPaletteColorLookupTableData", "SegmentedBluePaletteColorLookupTableData"):
        if keyword in source:
            assert _le(out[keyword].value) == _input_lut(source, keyword)


def test_16_bit_pixels_mislabelled_ob_are_swapped_as_decoders_read_them():
    """OB with Bits Allocated 16 breaks PS3.5 in Big Endian, but decoders read 2-byte units."""
    data, pixels = make_big_endian()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    assert np.array_equal(pydicom.dcmread(io.BytesIO(buf.getvalue())).pixel_array, pixels)
    assert np.array_equal(_run(buf.getvalue(), None).pixel_array, pixels)
