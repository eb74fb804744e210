"""Pixel bombs: tiny DICOM objects whose compressed pixels declare a huge image (issue 12, item 10).

A constant image compresses to almost nothing in JPEG-LS (run mode): 12000 x
12000 8-bit zeros encode to about 1.6 KB, and a decoder must allocate and fill
144 MB to read it back. The header around it is a synthetic CT with planted PHI
(tests/support/synthetic.py), so the pipeline reaches pixel cleaning as it
would for a real upload. Generated here, never committed.
"""

from __future__ import annotations

import copy
import io
from functools import lru_cache

import numpy as np
from pydicom.encaps import encapsulate
from pydicom.filewriter import dcmwrite
from pydicom.uid import JPEGLSLossless

from tests.support import synthetic


@lru_cache(maxsize=2)
def jpegls_codestream(side: int) -> bytes:
    """A real JPEG-LS codestream of a ``side`` x ``side`` 8-bit black image (what a decoder reads)."""
    import jpeg_ls

    return bytes(jpeg_ls.encode(np.zeros((side, side), dtype=np.uint8)))


def jpegls_bomb(side: int = 12000, *, seed: int = 0, declared: int | None = None,
                codestream: bytes | None = None) -> bytes:
    """A Part-10 JPEG-LS Lossless object whose header declares ``declared`` (default ``side``) pixels a side.

    ``codestream`` replaces the real JPEG-LS stream (for a header that lies about a small one).
    """
    obj = synthetic.make_ct(seed, rows=4, columns=4, signatures=False)
    ds = copy.deepcopy(obj.dataset)
    rows = declared or side
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    del ds.RescaleIntercept, ds.RescaleSlope
    ds.PixelData = encapsulate([codestream if codestream is not None else jpegls_codestream(side)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.preamble = b"\0" * 128
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
