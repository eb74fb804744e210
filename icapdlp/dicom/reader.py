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

from pydicom import Dataset
from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID

from icapdlp.dicom.options import DicomLimits
from icapdlp.dicom.prescan import EXPLICIT_BE, EXPLICIT_LE, UNDEFINED, PixelLocation, ScannedInput, scan
from icapdlp.report import ObjectReport

PIXEL_DATA = 0x7FE00010
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
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_BE)
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
        for elem in ds.iterall():  # decode every value now, inside the guarded parse stage
            pass
    return ds


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
