"""Part-10 writer: pydicom's own bytes, without pydicom's per-element cost on big sequences.

Why: a header with a 2000-item sequence spent about 40% of its pipeline
time in pydicom's writer, which builds a new buffer, converts the character
sets and walks a dispatch table for every element of every item. Sequences,
their items and UI values (most of what such headers hold) are written here
directly; every other element goes to pydicom's ``write_data_element``
unchanged, and any dataset pydicom would re-encode (VR or byte order or
character set differing from how it was read) goes to pydicom's
``write_dataset`` whole. The rules mirrored are pydicom 3.0's
(``filewriter.write_data_element`` / ``write_sequence_item`` /
``write_dataset``): items with a defined length get it patched in, UI values
are padded with NUL, sequences keep the undefined length they were read with.

Why it is safe: the output is compared byte for byte with ``dcmwrite`` on
every object the test suite builds (tests/dicom/test_writer.py), and when
anything here raises, the object is written again by ``dcmwrite`` alone, so
an error (and its exception type, which the pipeline reports) is pydicom's.
"""

from __future__ import annotations

import io
import struct

from pydicom import Dataset
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from icapdlp.dicom.prescan import DEFLATED_LE, PIXEL_DATA

SPECIFIC_CHARACTER_SET = 0x00080005
ITEM_TAG = b"\xfe\xff\x00\xe0"
ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
UNDEFINED_LENGTH = b"\xff\xff\xff\xff"
#: an explicit-VR UI value longer than this does not fit its 2-byte length (pydicom makes it UN)
MAX_SHORT_LENGTH = 0xFFFF

_TAG = struct.Struct("<HH")
_UL = struct.Struct("<I")
_EXPLICIT_SHORT = struct.Struct("<HH2sH")  # tag, VR, 2-byte length
_EXPLICIT_SQ = b"SQ\0\0"  # VR and the 2 reserved bytes; a 4-byte length follows
_IMPLICIT = struct.Struct("<HHI")


def write_part10(ds: Dataset, transfer_syntax: str) -> bytes:
    """``dcmwrite(ds, enforce_file_format=True)`` into bytes: zero preamble, ``ds.file_meta``, dataset."""
    uid = UID(transfer_syntax)
    if not (uid.is_transfer_syntax and not uid.is_private and uid.is_little_endian
            and uid != DEFLATED_LE):
        return _pydicom_write(ds)
    try:
        return _fast_write(ds, uid)
    except Exception:  # noqa: BLE001 - pydicom writes it again and raises its own error, if any
        return _pydicom_write(ds)


def _pydicom_write(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _fast_write(ds: Dataset, uid: UID) -> bytes:
    if any(tag >> 16 in (0, 2) for tag in ds._dict):  # dcmwrite refuses these: let it say so
        return _pydicom_write(ds)
    # Preamble, "DICM" and the File Meta group: dcmwrite itself, on a dataset with only that meta.
    # It takes the encoding from the transfer syntax (a public little-endian one here), so the
    # dataset that follows is encoded as dcmwrite would encode it.
    head = Dataset()
    head.file_meta = ds.file_meta
    head.preamble = getattr(ds, "preamble", None)
    fp = DicomBytesIO()
    dcmwrite(fp, head, enforce_file_format=True)
    if "PixelData" in ds:
        ds["PixelData"].is_undefined_length = uid.is_compressed  # as dcmwrite does
    fp.is_implicit_VR, fp.is_little_endian = uid.is_implicit_VR, True
    _write_dataset(fp, ds, default_encoding)
    return fp.getvalue()


def _write_dataset(fp: DicomBytesIO, ds: Dataset, parent_encoding) -> None:
    """pydicom's ``write_dataset`` with SQ and UI elements written here."""
    implicit = fp.is_implicit_VR
    if ((implicit, True) != ds.original_encoding
            or ds.original_character_set != ds._character_set):
        write_dataset(fp, ds, parent_encoding)  # pydicom re-encodes (new items, changed charset)
        return
    charset = ds._dict.get(SPECIFIC_CHARACTER_SET)  # ds.get("SpecificCharacterSet", parent_encoding)
    encoding = parent_encoding if charset is None else ds[SPECIFIC_CHARACTER_SET].value
    get_item = ds.get_item
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written
        elem = get_item(tag)
        if elem.is_raw or type(elem) is not DataElement:
            write_data_element(fp, elem, encoding)
            continue
        vr = elem.VR
        if vr == "SQ":
            _write_sequence(fp, elem, encoding, implicit)
        elif vr == "UI" and not elem.is_undefined_length:
            value = _ui_bytes(elem.value)
            if value is None:
                write_data_element(fp, elem, encoding)
            elif implicit:
                fp.write(_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(value)) + value)
            else:
                fp.write(_EXPLICIT_SHORT.pack(tag >> 16, tag & 0xFFFF, b"UI", len(value)) + value)
        else:
            write_data_element(fp, elem, encoding)


def _ui_bytes(value) -> bytes | None:
    """The bytes pydicom's ``write_UI`` writes for ``value``, or None when it is not a plain case."""
    if value is None:
        return b""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (MultiValue, list, tuple)) and all(isinstance(v, str) for v in value):
        text = "\\".join(value)
    else:
        return None
    if not text.isascii() or len(text) >= MAX_SHORT_LENGTH:
        return None
    if len(text) % 2:
        text += "\0"
    return text.encode("ascii")


def _write_sequence(fp: DicomBytesIO, elem: DataElement, encoding, implicit: bool) -> None:
    """An SQ element and its items, lengths as pydicom writes them."""
    tag = elem.tag
    fp.write(_TAG.pack(tag >> 16, tag & 0xFFFF))
    if not implicit:
        fp.write(_EXPLICIT_SQ)
    undefined = elem.is_undefined_length
    length_at = fp.tell()
    fp.write(UNDEFINED_LENGTH)
    encodings = convert_encodings(encoding or [default_encoding])
    for item in elem.value or ():
        fp.write(ITEM_TAG)
        item_length_at = fp.tell()
        fp.write(UNDEFINED_LENGTH)
        _write_dataset(fp, item, encodings)
        if getattr(item, "is_undefined_length_sequence_item", False):
            fp.write(ITEM_DELIMITER)
        else:
            _patch_length(fp, item_length_at)
    if undefined:
        fp.write(SEQUENCE_DELIMITER)
    else:
        _patch_length(fp, length_at)


def _patch_length(fp: DicomBytesIO, length_at: int) -> None:
    end = fp.tell()
    fp.seek(length_at)
    fp.write(_UL.pack(end - length_at - 4))
    fp.seek(end)
