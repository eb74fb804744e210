"""Decoding stored pixel values into frames, and 8-bit grey views of them for OCR.

Redaction works on the stored values (what gets written back), OCR on a
display-like grey rendering. Native data is decoded raw, so YBR_FULL stays
YBR_FULL and nothing is lost; encapsulated data is decoded to RGB when it was
YCbCr (that is what the JPEG decoders produce), and the caller writes the
photometric interpretation of what was actually decoded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from icapdlp.dicom.options import DicomLimits
from icapdlp.dicom.pixel_cost import check_decode_cost, decoded_pixel_bytes
from icapdlp.verdict import Blocked, BlockReason

#: photometric interpretations the redactor can fill and write back
SUPPORTED_PHOTOMETRIC = frozenset({"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                                   "PALETTE COLOR", "YBR_ICT", "YBR_RCT"})
#: sample sizes decoded, redacted and written back as they are (32-bit: RGB secondary captures, dose and
#: parametric data of other classes). 1-bit data is packed eight pixels a byte: it would have to be
#: repacked on writing, and the classes that use it (Segmentation) are not OCR'd (policy.TEXT_FREE_CLASSES)
SUPPORTED_BITS_ALLOCATED = frozenset({8, 16, 32})
#: the robust window for OCR ignores this fraction of darkest / brightest pixels (noise, dead pixels)
ROBUST_PERCENTILES = (0.1, 99.9)


@dataclass
class DecodedPixels:
    """All frames as stored values: (frames, rows, cols) or (frames, rows, cols, 3)."""

    frames: np.ndarray
    photometric: str
    transfer_syntax: UID
    encapsulated: bool


def decoded_size(ds: Dataset) -> int:
    """Bytes the decoded pixel data occupies, from the header alone (0 without a usable geometry)."""
    return decoded_pixel_bytes(ds) or 0


def decode(ds: Dataset, limits: DicomLimits | int) -> DecodedPixels:
    """Every frame of ``ds``; Blocked when too costly (checked before decoding), unsupported or undecodable.

    ``limits``: the decode budget (an int is ``max_pixel_bytes`` with the other limits at their defaults).
    """
    from pydicom.pixels import get_decoder

    if isinstance(limits, int):
        limits = DicomLimits(max_pixel_bytes=limits)
    if "PixelData" not in ds:
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, "no Pixel Data to clean")
    for keyword in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation"):
        if keyword not in ds:
            raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, f"{keyword} missing")
    photometric = str(ds.PhotometricInterpretation).strip()
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, "unsupported photometric interpretation")
    if int(ds.BitsAllocated) not in SUPPORTED_BITS_ALLOCATED:
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, f"bits allocated {int(ds.BitsAllocated)}")
    ts = UID(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2.1"))
    encapsulated = ts.is_encapsulated
    check_decode_cost(ds, limits, encapsulated)  # before any decoder allocates its output
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, f"no decoder for transfer syntax {ts}") from None
    if not decoder.is_available:
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, f"no decoder installed for {ts}")
    # Native unsigned samples are read as stored: the DICOM layer has already zeroed the bits
    # above High Bit (one rule, dicom/highbits.py), and pydicom's own correction would assume
    # the stored bits are the low ones and wipe an image whose High Bit is not Bits Stored - 1.
    # Signed samples keep pydicom's correction: it also extends the sign for display.
    as_stored = not encapsulated and int(ds.get("PixelRepresentation", 0) or 0) == 0
    try:
        arr, meta = decoder.as_array(ds, raw=not encapsulated, as_rgb=encapsulated,
                                     **({"correct_unused_bits": False} if as_stored else {}))
    except MemoryError:  # the worker's memory cap: a resource limit, not an undecodable frame
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "decoding ran out of memory") from None
    except Exception as exc:  # decoders raise many types on corrupt data; none may escape
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, f"frame cannot be decoded ({type(exc).__name__})") \
            from None
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if n_frames == 1 and arr.ndim == (3 if spp == 3 else 2):
        arr = arr[None]
    decoded_pi = meta.get("photometric_interpretation", photometric)
    decoded_pi = str(getattr(decoded_pi, "value", decoded_pi))
    if decoded_pi == "YBR_FULL_422" and not encapsulated:
        decoded_pi = "YBR_FULL"  # native 4:2:2 is upsampled by the decoder
    return DecodedPixels(arr, decoded_pi, ts, encapsulated)


def frame_digest(frame: np.ndarray) -> bytes:
    """Identity of a frame's content: identical cine frames are analysed once."""
    return hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=16).digest()


def _luminance(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _robust_8bit(values: np.ndarray) -> np.ndarray:
    """Stored values to 8 bits for OCR, the robust percentiles mapped to black and white."""
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        return _robust_8bit_counted(values)
    lo, hi = (float(v) for v in np.percentile(values, ROBUST_PERCENTILES))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip((values.astype(np.float64) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def _robust_8bit_counted(values: np.ndarray) -> np.ndarray:
    """The same for integers up to 16 bits: one counting pass instead of np.percentile's sort
    (same numbers, 5-10x faster), and one shifted copy that serves the count and the lookup."""
    from icapdlp.pixels.ocr import histogram_percentile

    base = int(values.min())
    shifted = values.astype(np.int32) - base
    counts = np.bincount(shifted.ravel())
    lo, hi = (base + histogram_percentile(counts, q) for q in ROBUST_PERCENTILES)
    if hi <= lo:
        lo, hi = float(base), float(base + len(counts) - 1)  # the minimum and the maximum
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    levels = np.arange(base, base + len(counts)).astype(np.float64)
    lut = np.clip((levels - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return lut[shifted]


def grey8(frame: np.ndarray, photometric: str, ds: Dataset) -> np.ndarray:
    """A display-like 8-bit grey rendering of one stored frame (bright = high luminance)."""
    if photometric in ("RGB", "YBR_ICT", "YBR_RCT"):
        values = _luminance(frame)
    elif photometric.startswith("YBR_FULL"):
        values = frame[..., 0]
    elif photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        values = _luminance(apply_color_lut(frame, ds))
    else:
        values = frame  # integers: windowed through a lookup table
    out = _robust_8bit(values)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out
