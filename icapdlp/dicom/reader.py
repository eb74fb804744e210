"""The parse stage: pydicom reads only bytes the pre-scan checked, and never copies native pixels.

Why a module of its own: the pixel value is most of a large object, and
pydicom would read it into a new bytes object. When native Pixel Data is the
last element (nearly always), the elements before it are parsed and the
value stays a memoryview of the input, which the checks, the high-bit
masking and the encoder all take. Every value is decoded here, inside the
pipeline's guarded "parse" stage, so a malformed value blocks the object
with a PHI-free reason instead of failing later.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from functools import lru_cache

from pydicom import Dataset
from pydicom import config as pydicom_config
from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.dataset import FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID

from icapdlp.dicom.byteorder import to_little_endian
from icapdlp.dicom.options import DicomLimits
from icapdlp.dicom.prescan import (EXPLICIT_BE, EXPLICIT_LE, PIXEL_DATA, UNDEFINED, PixelLocation,
                                   ScannedInput, scan)
from icapdlp.report import ObjectReport

#: explicit VRs of native Pixel Data (b"": Implicit VR); anything else is parsed the plain way
NATIVE_PIXEL_VRS = frozenset({b"OB", b"OW", b""})


def parse(data: bytes | bytearray, limits: DicomLimits, report: ObjectReport) -> tuple[Dataset, str]:
    """Scan, then parse ``data``; (dataset, input transfer syntax). Findings go to ``report``."""
    scanned = scan(data, limits)
    report.cdr_findings.update(scanned.findings)
    pixel = scanned.pixel
    if (scanned.dataset_offset is not None and pixel is not None and pixel.length != UNDEFINED
            and scanned.little_endian and pixel.vr in NATIVE_PIXEL_VRS
            and pixel.value_offset + pixel.length == len(scanned.dataset)):
        # the usual layout; elements after the pixels (signatures), odd VRs take the plain parse
        ds = _read_around_pixels(data, scanned, pixel)
    elif scanned.dataset_offset is not None and isinstance(data, bytes):
        # read in place from the input: BytesIO over bytes shares them, a slice would copy the pixels
        source = io.BytesIO(data)
        source.seek(scanned.dataset_offset)
        ds = read(source, scanned.implicit, scanned.little_endian, scanned.transfer_syntax,
                   len(scanned.dataset))
    else:
        ds = read(io.BytesIO(scanned.dataset), scanned.implicit, scanned.little_endian,
                   scanned.transfer_syntax, len(scanned.dataset))
    if scanned.transfer_syntax == EXPLICIT_BE:
        to_little_endian(ds)  # from here on the object is Explicit VR Little Endian
    return ds, scanned.transfer_syntax


def _read_around_pixels(data: bytes | bytearray, scanned: ScannedInput, pixel: PixelLocation) -> Dataset:
    """Parse the elements before native Pixel Data; its value stays a view into ``data``.

    pydicom would read the value into a new bytes object: a full-size copy
    of the largest value. The scan already checked where it starts and ends
    and that it is the last element, so the elements before it are parsed and
    the value is a memoryview of the input (the checks and the encoder take it).
    """
    view = memoryview(data)[scanned.dataset_offset:scanned.dataset_offset + len(scanned.dataset)]
    ds = read(_source(data, view, scanned.dataset_offset, pixel.header_offset), scanned.implicit,
               scanned.little_endian, scanned.transfer_syntax, pixel.header_offset)
    end = pixel.value_offset + pixel.length
    vr = pixel.vr.decode("ascii") if pixel.vr else "OB or OW"
    elem = DataElement(PIXEL_DATA, vr, b"")
    elem._value = view[pixel.value_offset:end]  # the setter would validate a buffer as a list
    ds[PIXEL_DATA] = elem
    return ds


def _source(data: bytes | bytearray, view: memoryview, offset: int, length: int) -> io.BytesIO:
    """A reader of ``length`` dataset bytes: shares ``data`` if it is bytes, else copies only those."""
    if isinstance(data, bytes):
        source = io.BytesIO(data)
        source.seek(offset)
        return source
    return io.BytesIO(bytes(view[:length]))


def read(source: io.BytesIO, implicit: bool, little: bool, ts: str, length: int) -> Dataset:
    """Parse ``length`` bytes of dataset from ``source``'s position (already checked by the scan)."""
    ds = read_dataset(source, implicit, little, bytelength=length)
    ds.file_meta = FileMetaDataset()
    # Deflated input was inflated by the scanner: from here on it is Explicit VR LE.
    ds.file_meta.TransferSyntaxUID = UID(ts if ts != "1.2.840.10008.1.2.1.99" else EXPLICIT_LE)
    with _no_read_warnings():
        decode_all(ds)  # every value now, inside the guarded parse stage
    return ds


def decode_all(ds: Dataset) -> None:
    """Decode every element at every depth, as ``for _ in ds.iterall(): pass`` does.

    Why not iterall alone: a header with a 2000-item sequence of references
    is mostly UI values, and pydicom's general conversion (hooks, tag
    comparisons, item access) costs several times the decoding itself. A
    plain UI value is decoded here the way pydicom's default hooks decode it
    (latin-1, trailing NULs and spaces dropped, one UID); everything else,
    and every UI value that is not plain, goes through pydicom. The result
    is compared element by element with pydicom's in tests/dicom/test_reader_decode.py.
    """
    plain_ui = _default_conversion()
    elements = ds._dict
    for tag in sorted(elements):
        raw = elements[tag]
        if plain_ui and type(raw) is RawDataElement:
            elem = _plain_ui(raw)
            if elem is not None:
                elements[tag] = elem
                continue
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                decode_all(item)


def decoded_element(ds: Dataset, tag: int) -> DataElement:
    """``ds[tag]`` for a present ``tag``, without ``__getitem__``'s cost once the value is decoded.

    The walks (value checks, the profile) look up every element of every
    item; after :func:`decode_all` each is a DataElement already, which
    ``ds[tag]`` would return unchanged. Anything still raw goes through ``ds[tag]``.
    """
    elem = ds._dict[tag]
    return elem if type(elem) is DataElement else ds[tag]


def _default_conversion() -> bool:
    """Whether pydicom converts raw elements with its default hooks (no callback installed)."""
    return (pydicom_config.data_element_callback is None and not hooks.raw_element_kwargs
            and hooks.raw_element_vr is raw_element_vr and hooks.raw_element_value is raw_element_value)


def _plain_ui(raw: RawDataElement) -> DataElement | None:
    """pydicom's DataElement for a single-valued, non-private UI ``raw``; None for anything else."""
    tag, value = raw.tag, raw.value
    if (not isinstance(value, bytes) or not 0 < raw.length < UNDEFINED or tag & 0x10000
            or (raw.VR or _dictionary_vr(tag)) != "UI"):
        return None
    text = value.decode(default_encoding).rstrip("\0 ")
    if "\\" in text:
        return None  # multi-valued: pydicom makes the MultiValue
    return DataElement(tag, "UI", UID(text), raw.value_tell, False, already_converted=True)


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@contextmanager
def _no_read_warnings():
    """Decode values without pydicom's read-time checks, which can only warn.

    pydicom matches every value it decodes against its VR (a regular
    expression per UID, date, number...) only to emit a warning, and this
    module silences pydicom's warnings (they may quote values). A 2000-item
    sequence spends about a tenth of its time there. The checks that decide
    something are :mod:`icapdlp.dicom.conformance`'s. Values set later are
    still validated on write. (Concurrent threads may leave the mode at
    IGNORE; it only ever suppresses warnings.)
    """
    settings = pydicom_config.settings
    saved = settings._reading_validation_mode
    settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        yield
    finally:
        settings._reading_validation_mode = saved
