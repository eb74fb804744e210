"""Explicit VR Big Endian input made little endian once, right after parsing.

Why once and early: every later stage (value checks, pixel cleaning, the
profile, the writer) then sees one byte order, and nothing has to remember
whether a value was already swapped. The bug this replaced swapped raw values
only at write time and only when the transfer syntax still said Big Endian;
the pixel cleaner re-labels the object Little Endian when it writes cleaned
frames back, so the palette LUTs of every cleaned Big Endian object were
written in the wrong byte order (PS3.5 7.3: the byte order of OW/OF/OL/OD/OV
values follows the transfer syntax).

What pydicom leaves to us: it decodes numbers (US, SS, UL, SL, FL, FD, AT,
SV, UV) with the input's byte order, so they are values, not bytes; but
OW/OF/OL/OD/OV values stay raw bytes in the input's order. Those are swapped
here at every depth, Pixel Data and Waveform Data in units of their Bits
Allocated (a 32-bit RT Dose grid is stored in 4-byte units, as pydicom's and
DCMTK's decoders read it). UN values cannot be swapped: their real VR, hence
their unit, is unknown, so they are removed (only private elements can still
be UN after pydicom's dictionary look-up, and the profile removes unknown
public ones anyway).
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.uid import UID

from icapdlp.dicom.prescan import EXPLICIT_LE, PIXEL_DATA

#: unit in bytes of each "other" VR whose raw bytes follow the transfer syntax's byte order
SWAP_WIDTHS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
WAVEFORM_DATA = 0x54001010
#: the element whose unit is given by each bits-allocated attribute of the same dataset
_UNIT_FROM_BITS = {PIXEL_DATA: "BitsAllocated", WAVEFORM_DATA: "WaveformBitsAllocated"}


def to_little_endian(ds: Dataset) -> None:
    """Swap every raw multi-byte value of ``ds`` (read as Big Endian) to Little Endian, in place.

    Afterwards the File Meta says Explicit VR Little Endian, which is what the
    dataset now is; the writer encodes the decoded numbers little endian.
    """
    _swap_dataset(ds)
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)


def _swap_dataset(ds: Dataset) -> None:
    for tag in list(ds.keys()):
        elem = ds[tag]
        vr = elem.VR
        if vr == "SQ":
            for item in elem.value or ():
                _swap_dataset(item)
        elif vr == "UN" and elem.value:
            del ds[tag]
        elif (vr in SWAP_WIDTHS or vr == "OB" and int(tag) in _UNIT_FROM_BITS) \
                and isinstance(elem.value, (bytes, bytearray, memoryview)) and elem.value:
            width = _unit(ds, int(tag), vr)
            if width == 1:
                continue
            value = bytes(elem.value)
            if len(value) % width:
                continue  # not whole units: the value checks and the pixel geometry deal with it
            swapped = np.frombuffer(value, dtype=f">u{width}").astype(f"<u{width}").tobytes()
            elem._value = swapped  # the setter would re-validate the bytes


def _unit(ds: Dataset, tag: int, vr: str) -> int:
    """Bytes per swapped unit: the VR's, or Bits Allocated / 8 for Pixel and Waveform Data.

    Pixel and Waveform Data in OB are only swapped when their Bits Allocated is over 8: the
    Standard wants OW then, but decoders read such values in units of Bits Allocated in the
    transfer syntax's byte order whatever the VR says, and so must the converted object.
    """
    keyword = _UNIT_FROM_BITS.get(tag)
    if keyword is not None:
        try:
            bits = int(ds.get(keyword, 16 if vr == "OW" else 8) or 8)
        except (TypeError, ValueError):
            bits = 16 if vr == "OW" else 8
        if bits in (16, 32, 64):
            return bits // 8
        if vr == "OB":
            return 1
    return SWAP_WIDTHS[vr]
