"""What decoding an object's pixels will cost, decided from its header before any decoder runs.

Why here, and why before: a decoder allocates the whole output for the
geometry the header declares (pydicom's ``np.empty(rows * columns * ...)``)
and then fills it, so a 1.6 KB JPEG-LS stream that declares 12000 x 12000
pixels costs a worker 288 MB of output, several copies of it for OCR, and
tens of seconds (issue 12, item 10). Once a decoder runs, the memory is
already gone; a check afterwards can only report it. The pipeline (before it
hands an object to a pixel cleaner) and the burned-in-text cleaner (before it
decodes) both call :func:`check_decode_cost`, so the two can never disagree.

Two limits from :class:`~icapdlp.dicom.options.DicomLimits`, and the worker's own:

- ``max_pixel_bytes``: rows x columns x samples x frames x bytes per sample
  of the decoded array. Cleaning holds a few copies of it (measured peak RSS:
  7-9 x the decoded size for one large frame), so this bounds a worker's
  memory.
- ``max_decode_ratio``: decoded bytes per stored byte of encapsulated
  (compressed) Pixel Data. Real lossless codecs reach 2-4:1 on images and
  lossy ones tens to a few hundred; above the limit the object is a bomb,
  unless it decodes to at most ``decode_ratio_floor_bytes`` (a blank frame
  compresses far beyond any ratio, and costs little).
- the memory cap a worker process runs under (``RLIMIT_AS``, see
  ``server/workers.py``): cleaning needs about :func:`cleaning_bytes`, and
  when that is more than the address space the process has left, the object
  is refused here. Without this, the cap would be met
  inside a native decoder or Tesseract, which may abort the process instead
  of raising ``MemoryError``: the object would still be blocked, but as
  ``worker-crashed``, and the worker lost.
"""

from __future__ import annotations

import os
import resource

from pydicom.dataset import Dataset

from icapdlp.dicom.options import DicomLimits
from icapdlp.verdict import Blocked, BlockReason

#: what cleaning holds per decoded byte of the whole object (the decoded frames, the
#: written-back copy, the input) and per byte of its largest frame (8-bit view, OCR buffers).
#: Measured: one 8192 x 8192 16-bit frame +913 MiB RSS for 128 MiB decoded (7.1x); 64 frames
#: of 1024 x 1024 +297 MiB for 128 MiB (2.3x); one 4096 x 4096 frame 9.2x. 3 + 7 covers all three.
CLEANING_WHOLE_FACTOR = 3
CLEANING_FRAME_FACTOR = 7
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

_GEOMETRY = ("Rows", "Columns", "SamplesPerPixel", "NumberOfFrames", "BitsAllocated")
#: attributes that default to 1 when absent (a single-frame, single-sample image)
_DEFAULT_ONE = frozenset({"SamplesPerPixel", "NumberOfFrames"})


def _geometry(ds: Dataset) -> dict[str, int] | None:
    """Rows, Columns, SamplesPerPixel, NumberOfFrames and BitsAllocated, all positive; else ``None``."""
    values = {}
    for keyword in _GEOMETRY:
        try:
            raw = ds.get(keyword, None)  # converting a malformed raw value raises here
            if raw is None or raw == "":
                if keyword not in _DEFAULT_ONE:
                    return None
                values[keyword] = 1
                continue
            values[keyword] = int(raw)
        except (TypeError, ValueError, OverflowError):
            return None
        if values[keyword] <= 0:
            return None
    return values


def decoded_pixel_bytes(ds: Dataset) -> int | None:
    """Bytes of the decoded pixel array the header declares, or ``None`` without a usable geometry.

    Each sample takes whole bytes once decoded (1-bit data is unpacked to one
    byte per pixel, 12 bits to two), so bits are rounded up to bytes.
    """
    geometry = _geometry(ds)
    if geometry is None:
        return None
    bytes_per_sample = (geometry["BitsAllocated"] + 7) // 8
    return (geometry["Rows"] * geometry["Columns"] * geometry["SamplesPerPixel"] * geometry["NumberOfFrames"]
            * bytes_per_sample)


def cleaning_bytes(decoded: int, frames: int) -> int:
    """Peak memory, estimated, of cleaning ``decoded`` bytes of pixels in ``frames`` frames."""
    return CLEANING_WHOLE_FACTOR * decoded + CLEANING_FRAME_FACTOR * (decoded // max(1, frames))


def stored_pixel_bytes(ds: Dataset) -> int:
    """Bytes of the Pixel Data value as stored (for encapsulated data: every fragment and item tag)."""
    element = ds.get("PixelData", None)
    value = getattr(element, "value", element)
    return len(value) if value is not None else 0


def check_decode_cost(ds: Dataset, limits: DicomLimits, encapsulated: bool) -> int:
    """The decoded size of ``ds``'s pixels; ``Blocked(limit-exceeded)`` when decoding is too costly.

    Blocked too (pixel-cleaning-impossible) when the header has no usable
    geometry: nothing can be decoded safely without one.
    """
    decoded = decoded_pixel_bytes(ds)
    if decoded is None:
        raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, "pixel geometry missing or not positive")
    if decoded > limits.max_pixel_bytes:
        raise Blocked(BlockReason.LIMIT_EXCEEDED,
                      f"decoded pixel data {decoded} bytes exceeds max_pixel_bytes {limits.max_pixel_bytes}")
    if encapsulated and limits.max_decode_ratio and decoded > limits.decode_ratio_floor_bytes:
        stored = max(1, stored_pixel_bytes(ds))
        if decoded > stored * limits.max_decode_ratio:
            raise Blocked(BlockReason.LIMIT_EXCEEDED,
                          f"{stored} stored pixel bytes declare {decoded} decoded bytes "
                          f"(ratio above max_decode_ratio {limits.max_decode_ratio})")
    left = address_space_left()
    if left is not None:
        needed = cleaning_bytes(decoded, _geometry(ds)["NumberOfFrames"])
        if needed > left:
            raise Blocked(BlockReason.LIMIT_EXCEEDED, f"cleaning {decoded} decoded bytes needs about {needed}; "
                                                      f"{left} left under the worker memory cap")
    return decoded


def address_space_left() -> int | None:
    """Bytes this process may still map under its RLIMIT_AS, or ``None`` when it runs uncapped."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as handle:  # first field: the address space in use, in pages
            in_use = int(handle.read().split()[0]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None
    return soft - in_use
