"""Zero the bits above High Bit in native Pixel Data, touching the pixels as few times as possible.

Why this has its own module: Pixel Data is the one large value (hundreds of
MiB for a long multi-frame), and every full-size pass or copy of it costs
its size in memory traffic and, for a fresh buffer, in page faults. The
check runs over cache-sized chunks and stops at the first chunk with a bit
above High Bit, so a clean image costs one read pass and no copy. A dirty
one costs one more pass: masked in place when the caller owns a writable
buffer (the worker's own copy of a spooled body), otherwise masked straight
into one new buffer (the clean chunks before the first dirty one copied,
the rest masked on the way), never copy-then-mask.
"""

from __future__ import annotations

import numpy as np

#: pixels checked (and masked) per step: the temporaries stay small enough for the caches
CHUNK_PIXELS = 1 << 17
#: BitsAllocated -> little-endian unsigned type of one pixel sample
SAMPLE_TYPES = {8: np.dtype("<u1"), 16: np.dtype("<u2"), 32: np.dtype("<u4")}


def unused_bits_mask(allocated: int, stored: int, high: int) -> tuple[np.dtype, int] | None:
    """(sample type, mask of the used bits), or None when no bit is unused or the layout is odd."""
    if allocated not in SAMPLE_TYPES or not 0 < stored < allocated:
        return None
    low = high + 1 - stored
    return SAMPLE_TYPES[allocated], ((1 << stored) - 1) << max(low, 0)


def mask_high_bits(value, dtype: np.dtype, mask: int, *, in_place: bool):
    """Return ``(new value, changed)``; ``value`` itself (unchanged, not copied) when clean.

    ``in_place``: the caller owns ``value`` and it is writable (a bytearray or
    a writable memoryview of one), so the masking writes into it. Otherwise a
    dirty value is masked into a new uint8 buffer, returned as a memoryview.
    """
    view = memoryview(value).cast("B")
    count = view.nbytes // dtype.itemsize
    pixels = np.frombuffer(view, dtype=dtype, count=count)
    keep = np.array(mask, dtype=dtype)
    unused = np.array(~mask & np.iinfo(dtype).max, dtype=dtype)
    scratch = np.empty(min(CHUNK_PIXELS, count), dtype=dtype)
    first = None
    for start in range(0, count, CHUNK_PIXELS):
        chunk = pixels[start:start + CHUNK_PIXELS]
        part = scratch[:len(chunk)]
        np.bitwise_and(chunk, unused, out=part)
        if part.any():
            first = start
            break
    if first is None:
        return value, False
    if in_place and not view.readonly:
        target = np.frombuffer(view, dtype=dtype, count=count)
        np.bitwise_and(target[first:], keep, out=target[first:])
        return value, True
    out = np.empty(view.nbytes, dtype=np.uint8)
    target = out[:count * dtype.itemsize].view(dtype)
    target[:first] = pixels[:first]
    np.bitwise_and(pixels[first:], keep, out=target[first:])
    out[count * dtype.itemsize:] = np.frombuffer(view, dtype=np.uint8)[count * dtype.itemsize:]
    return memoryview(out), True
