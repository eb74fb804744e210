"""The writer (icapdlp.dicom.writer) gives exactly the bytes of pydicom's ``dcmwrite``.

Why: it writes sequences, items and UI values itself to spare pydicom's
per-element cost on big headers. Any difference would change every rebuilt
object, so every dataset the pipeline is about to encode is written both
ways and compared, over the shapes the generator makes (all transfer
syntaxes, bare datasets, multi-frame, long sequences, every profile option),
plus hand-made datasets for the cases the fast path must hand back to pydicom.
"""

from __future__ import annotations

import copy
import io
from dataclasses import replace

import pytest
from pydicom import Dataset, Sequence
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID

from icapdlp.dicom import rebuild, writer
from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.dicom.rebuild import new_file_meta
from tests.dicom.helpers import BASIC, config
from tests.support.synthetic import make_ct, make_large_sequences, make_multiframe, make_study, to_bytes

EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
ALL_OPTIONS = replace(BASIC, clean_descriptors=True, clean_structured_content=True, clean_graphics=True,
                      retain_safe_private=True, retain_uids=False, longitudinal_dates="modified")


def _pydicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, copy.deepcopy(ds), enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def compared(monkeypatch):
    """Every dataset the rebuild writes is also written by dcmwrite; returns the pairs written."""
    pairs: list[tuple[bytes, bytes]] = []
    real = writer.write_part10

    def both(ds, ts):
        expected = _pydicom_bytes(ds)
        got = real(ds, ts)
        pairs.append((got, expected))
        return got

    monkeypatch.setattr(rebuild, "write_part10", both)
    return pairs


def _objects():
    yield "ct-explicit", make_ct(1, signatures=False).data
    yield "ct-signatures", make_ct(2).data
    for ts in ("implicit-le", "explicit-be", "deflated"):
        yield f"ct-{ts}", make_ct(3, transfer_syntax=ts).data
    yield "ct-bare-implicit", make_ct(4, transfer_syntax="implicit-le", bare=True).data
    yield "multiframe", make_multiframe(5, frames=3, rows=16, columns=16).data
    yield "sequence-300", make_large_sequences(6, items=300).data
    yield "sequence-implicit", to_bytes(copy.deepcopy(make_large_sequences(7, items=40).dataset),
                                        transfer_syntax="implicit-le")
    for index, obj in enumerate(make_study(2, 2, seed=8)):
        yield f"study-{index}", obj.data


OBJECTS = dict(_objects())


@pytest.mark.parametrize("name", sorted(OBJECTS))
@pytest.mark.parametrize("profile", [BASIC, ALL_OPTIONS], ids=["basic", "all-options"])
def test_pipeline_output_is_dcmwrite_bytes(compared, name, profile):
    deidentify_bytes(OBJECTS[name], config(profile))
    assert compared, "the rebuild wrote nothing through the writer"
    for got, expected in compared:
        assert got == expected


def test_owned_buffer_output_is_dcmwrite_bytes(compared):
    output = deidentify_bytes(bytearray(make_large_sequences(9, items=200).data), config(), owned=True)
    assert len(compared) == 1 and compared[0][0] == compared[0][1]
    assert output.data.startswith(bytes(128) + b"DICM")


def _dataset(ts: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.file_meta = new_file_meta(ds, ts)
    ds.preamble = bytes(128)
    ds.set_original_encoding(ts == IMPLICIT_LE, True, "iso8859")  # as if read: the fast path writes it
    return ds


def _item(implicit: bool = False, **values) -> Dataset:
    """An item encoded as if read (so the fast path writes it) in the given VR encoding."""
    item = Dataset()
    item.set_original_encoding(implicit, True, "iso8859")
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


@pytest.mark.parametrize("ts", [EXPLICIT_LE, IMPLICIT_LE])
def test_hand_made_shapes_are_dcmwrite_bytes(ts):
    ds = _dataset(ts)
    ds.ReferencedSOPInstanceUID = ["1.2.3", "1.2.33", ""]  # multi-valued, odd, with an empty value
    ds.FrameOfReferenceUID = None  # empty UI
    ds.StudyInstanceUID = ""  # empty UI (another way)
    implicit = ts == IMPLICIT_LE
    ds.ReferencedImageSequence = Sequence([_item(implicit, ReferencedSOPInstanceUID="1.2.345"),
                                           _item(implicit, ReferencedSOPClassUID="1.2.3"),
                                           _item(None)])  # never read: pydicom's write_dataset
    ds["ReferencedImageSequence"].is_undefined_length = False  # defined length: patched in
    undefined_item = _item(implicit, ReferencedSOPInstanceUID="9.8")
    undefined_item.is_undefined_length_sequence_item = True
    ds.ReferencedStudySequence = Sequence([undefined_item, _item(implicit)])  # delimiters, empty item
    ds["ReferencedStudySequence"].is_undefined_length = True
    ds.add_new(0x00200000, "UL", 4)  # a retired group length: never written
    ds.ReferencedSeriesSequence = Sequence()  # empty sequence
    nested = _item(implicit, ReferencedSOPInstanceUID="1.2.3.4.5")
    nested.ReferencedImageSequence = Sequence([_item(implicit, ReferencedSOPInstanceUID="7.7.7")])
    ds.ReferencedInstanceSequence = Sequence([nested])
    ds.ContentLabel = "LABEL"  # not SQ/UI: pydicom's own element writer
    got = writer.write_part10(copy.deepcopy(ds), ts)
    assert got == _pydicom_bytes(ds)
    assert b"\xfe\xff\xdd\xe0" in got and b"\xfe\xff\x0d\xe0" in got  # both delimiters written


def test_changed_character_set_takes_pydicom_path():
    ds = _dataset(EXPLICIT_LE)
    ds.SpecificCharacterSet = "ISO_IR 100"  # differs from how it was "read" (none): pydicom re-encodes
    ds.PatientName = "Müller^Hans"
    ds.ReferencedImageSequence = Sequence([_item(ReferencedSOPInstanceUID="1.2.3")])
    assert writer.write_part10(copy.deepcopy(ds), EXPLICIT_LE) == _pydicom_bytes(ds)


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # the invalid value is the point of the test
def test_non_ascii_uid_fails_as_pydicom_fails():
    ds = _dataset(EXPLICIT_LE)
    ds.StudyInstanceUID = "1.2.\u20ac"  # not in pydicom's default encoding
    with pytest.raises(Exception) as ours:
        writer.write_part10(copy.deepcopy(ds), EXPLICIT_LE)
    with pytest.raises(Exception) as theirs:
        _pydicom_bytes(ds)
    assert type(ours.value) is type(theirs.value)


def test_command_group_element_is_refused_like_dcmwrite():
    ds = _dataset(EXPLICIT_LE)
    ds.add_new(0x00000900, "US", 0)  # Status: command group elements do not belong in a file
    with pytest.raises(ValueError, match="Command Set"):
        writer.write_part10(ds, EXPLICIT_LE)


def test_big_endian_and_private_syntaxes_are_pydicom_writes():
    ds = _dataset(EXPLICIT_LE)
    ds.file_meta = FileMetaDataset(ds.file_meta)
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.2")
    ds.ReferencedImageSequence = Sequence([_item(ReferencedSOPInstanceUID="1.2.3")])
    assert writer.write_part10(copy.deepcopy(ds), "1.2.840.10008.1.2.2") == _pydicom_bytes(ds)
