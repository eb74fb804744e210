"""Clean rebuild (CDR): markers, pixel high bits, new File Meta, zero preamble, encode.

Why rebuild instead of patching: anything we copy from the input can carry a
payload (an executable preamble, private meta elements, bytes after the
dataset). The output is written from the de-identified Dataset alone: a
zeroed 128-byte preamble, a File Meta Information group built from scratch
with only the attributes PS3.10 requires, and nothing after the dataset.
"""

from __future__ import annotations

import struct

from pydicom import Dataset, Sequence
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID

from icapdlp import PRODUCT, __version__
from icapdlp.dicom import ps315_table
from icapdlp.dicom.highbits import mask_high_bits, unused_bits_mask
from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.prescan import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, PIXEL_DATA
from icapdlp.dicom.profile import OPTION_CODES, applied_option_keys
from icapdlp.dicom.writer import write_part10
from icapdlp.verdict import Blocked, BlockReason

#: our Implementation Class UID: 2.25 + a fixed 128-bit number chosen for icapdlp
IMPLEMENTATION_CLASS_UID = "2.25.253384740195381846127093271618436066473"
IMPLEMENTATION_VERSION = f"ICAPDLP_{__version__}"[:16]


def add_markers(ds: Dataset, profile: ProfileOptions, *, pixels_cleaned: bool) -> None:
    """PS3.15 E.1.1 markers: what was done, naming only options actually applied."""
    keys = applied_option_keys(profile, pixels_cleaned=pixels_cleaned)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [f"{PRODUCT} {__version__}", f"PS3.15 {ps315_table.EDITION} Table E.1-1"] + [
        OPTION_CODES[k][1][:64] for k in keys]
    items = []
    for k in keys:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator = OPTION_CODES[k][0], "DCM"
        item.CodeMeaning = OPTION_CODES[k][1]
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = {
        "remove": "REMOVED", "full": "UNMODIFIED", "modified": "MODIFIED"}[profile.longitudinal_dates]
    if pixels_cleaned:
        ds.BurnedInAnnotation = "NO"


def zero_bits_above_high_bit(ds: Dataset, encapsulated: bool, *, in_place: bool = False,
                             owned: bool = False) -> bool:
    """Zero the unused bits of native Pixel Data (overlays hide there); True if any changed.

    The work is :func:`icapdlp.dicom.highbits.mask_high_bits`: a clean image
    costs one read pass and no copy. With ``in_place`` the new value may be a
    buffer (bytearray or memoryview) that only the encoder writes; with
    ``owned`` too, a writable value is masked where it lies (the caller gave
    its buffer away). Without ``in_place`` the value is set back as bytes for
    callers that keep the dataset.
    """
    if encapsulated or PIXEL_DATA not in ds:
        return False
    allocated, stored = int(ds.get("BitsAllocated", 0) or 0), int(ds.get("BitsStored", 0) or 0)
    high = int(ds.get("HighBit", stored - 1) if ds.get("HighBit") is not None else stored - 1)
    layout = unused_bits_mask(allocated, stored, high)
    raw = ds[PIXEL_DATA].value
    if layout is None or not raw:
        return False
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        # native pixels read as numbers (a VR other than OB/OW): the bits cannot be checked, so block
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "native Pixel Data is not a byte value")
    cleaned, changed = mask_high_bits(raw, *layout, in_place=in_place and owned)
    if not changed or cleaned is raw:
        return changed
    if in_place:
        ds[PIXEL_DATA]._value = cleaned  # the value setter would turn a buffer into a list of ints
    else:
        ds.PixelData = bytes(cleaned)
    return True


def output_transfer_syntax(input_ts: str) -> str:
    """Big Endian and Deflated inputs are written as Explicit VR Little Endian."""
    return EXPLICIT_LE if input_ts in (EXPLICIT_BE, DEFLATED_LE) else input_ts


def new_file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    """File Meta Information from scratch: only what PS3.10 7.1 requires."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "") or ""
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "") or ""
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    """Write ``ds`` as Part-10 with a zero preamble and a rebuilt File Meta."""
    return b"".join(encode_chunks(ds, transfer_syntax))


def encode_chunks(ds: Dataset, transfer_syntax: str) -> list:
    """:func:`encode` as pieces whose concatenation is the object: no full-size join.

    When native Pixel Data is the last element (nearly always), the rest is
    written by pydicom and the pixel value is returned as its own piece after
    its element header, so a caller that writes to a file never copies it
    (writing it through BytesIO would copy it two or three times as the
    buffer grows). The bytes are the same as pydicom writing the whole dataset.
    """
    ds.file_meta = new_file_meta(ds, transfer_syntax)
    ds.preamble = bytes(128)
    uid = UID(transfer_syntax)
    pixel = ds.get_item(PIXEL_DATA) if PIXEL_DATA in ds else None
    value = None if pixel is None else getattr(pixel, "value", None)
    if isinstance(value, memoryview):
        value = value.cast("B")
    if (pixel is None or uid.is_encapsulated or not uid.is_little_endian
            or not isinstance(value, (bytes, bytearray, memoryview)) or len(value) % 2
            or max(int(tag) for tag in ds.keys()) != PIXEL_DATA):
        if isinstance(value, (bytearray, memoryview)):
            ds[PIXEL_DATA]._value = bytes(value)  # pydicom writes bytes; rare: not the last element
        return [_write(ds)]
    vr = ds[PIXEL_DATA].VR if ds[PIXEL_DATA].VR in ("OB", "OW") else "OW"
    del ds[PIXEL_DATA]
    try:
        head = _write(ds)
    finally:
        ds[PIXEL_DATA] = pixel
    if uid.is_implicit_VR:
        element = struct.pack("<HHI", 0x7FE0, 0x0010, len(value))
    else:
        element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr.encode(), 0, len(value))
    return [head, element, value]


def _write(ds: Dataset) -> bytes:
    return write_part10(ds, str(ds.file_meta.TransferSyntaxUID))


def encode_header(ds: Dataset, transfer_syntax: str) -> bytes:
    """Like :func:`encode` for a dataset that stops before Pixel Data (ICAP 206 path)."""
    return encode(ds, transfer_syntax)
