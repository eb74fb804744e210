"""Writing redacted frames back so header, file meta and data always agree.

Lossless inputs stay lossless: the same transfer syntax where an encoder is
installed (RLE, JPEG-LS, JPEG 2000 lossless), else Explicit VR Little Endian.
Lossy inputs are stored uncompressed: re-encoding would add a second
generation of loss to a diagnostic image, and uncompressed data with Lossy
Image Compression "01" kept is truthful. Nothing uncompressed is ever left
under an encapsulated transfer syntax.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    UID,
)

from icapdlp.dicom.highbits import unused_bits_mask
from icapdlp.pixels.frames import DecodedPixels
from icapdlp.verdict import Blocked, BlockReason

#: lossless syntaxes we re-encode in place (the encoder ships with the pinned plugins)
REENCODE_LOSSLESS = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless})
#: native syntaxes kept as they are (little endian; the writer handles VR and deflate)
KEEP_NATIVE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian})
#: Lossy Image Compression Method values per lossy transfer syntax (PS3.3 C.7.6.1.1.5.1)
LOSSY_METHOD = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}
_OFFSET_TABLES = (0x7FE00001, 0x7FE00002)  # Extended Offset Table (+ Lengths): only valid encapsulated


def _was_lossy(ds: Dataset, ts: UID) -> bool:
    flag = str(ds.get("LossyImageCompression", "")).strip()
    if flag == "01":
        return True
    if flag == "00":
        return False
    # unknown: a syntax that may be lossy counts as lossy (JPEG 2000 and JPEG-LS near-lossless
    # can carry lossless data, but nothing in the object says so)
    return ts in LOSSY_METHOD


def _mask_unused_bits(frames: np.ndarray, ds: Dataset) -> np.ndarray:
    """Clear bits above High Bit (overlays and other data hide there) in frames about to be compressed.

    Only for output that stays encapsulated: native output is masked once, by
    the DICOM layer's rebuild (``icapdlp.dicom.rebuild.zero_bits_above_high_bit``),
    with pixel cleaning on or off alike, so the mask rule is the DICOM layer's.
    """
    allocated = frames.dtype.itemsize * 8
    stored = int(ds.get("BitsStored", allocated))
    high = ds.get("HighBit")
    layout = unused_bits_mask(allocated, stored, int(high) if high is not None else stored - 1)
    if frames.dtype.kind != "u" or layout is None:
        return frames
    return frames & np.array(layout[1], dtype=frames.dtype)


def _set_native(ds: Dataset, frames: np.ndarray, photometric: str, ts: UID) -> None:
    arr = np.ascontiguousarray(frames.astype(frames.dtype.newbyteorder("<"), copy=False))
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OB" if arr.dtype.itemsize == 1 else "OW"
    ds.PhotometricInterpretation = photometric
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        ds.PlanarConfiguration = 0
    for tag in _OFFSET_TABLES:
        if tag in ds:
            del ds[tag]
    ds.file_meta.TransferSyntaxUID = ts


def write_back(ds: Dataset, decoded: DecodedPixels) -> str:
    """Store ``decoded.frames`` in ``ds``; returns the transfer syntax UID written."""
    frames = decoded.frames
    multi = "NumberOfFrames" in ds
    data = frames if multi or frames.shape[0] > 1 else frames[0]
    source = decoded.transfer_syntax
    photometric = decoded.photometric
    if not decoded.encapsulated:
        _set_native(ds, data, photometric, source if source in KEEP_NATIVE else ExplicitVRLittleEndian)
        return str(ds.file_meta.TransferSyntaxUID)
    lossy = _was_lossy(ds, source)
    if not lossy and source in REENCODE_LOSSLESS:
        stored_as = str(ds.get("PhotometricInterpretation", "")).strip()
        _set_native(ds, _mask_unused_bits(data, ds), photometric, ExplicitVRLittleEndian)
        if source == JPEG2000Lossless and stored_as == "YBR_RCT" and photometric == "RGB":
            # The decoder undid the reversible colour transform; saying YBR_RCT makes the
            # encoder apply it again. Labelled RGB, the frame is coded without it: about
            # twice as large, and an RGB label on a colour-transformed J2K stream is wrong.
            ds.PhotometricInterpretation = "YBR_RCT"
        try:
            ds.compress(source, generate_instance_uid=False)
        except Exception as exc:  # an encoder refusing this layout: fall back to uncompressed
            _set_native(ds, data, photometric, ExplicitVRLittleEndian)
            if not isinstance(exc, (ValueError, RuntimeError, NotImplementedError)):
                raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, "re-encoding failed") from None
        return str(ds.file_meta.TransferSyntaxUID)
    _set_native(ds, data, photometric, ExplicitVRLittleEndian)
    if lossy:
        ds.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in ds and source in LOSSY_METHOD:
            ds.LossyImageCompressionMethod = LOSSY_METHOD[source]
    return str(ds.file_meta.TransferSyntaxUID)
