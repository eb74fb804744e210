"""A second view of deep grey frames for OCR: low-contrast text stretched on its stored bit depth.

The OCR view (:func:`icapdlp.pixels.frames.grey8`) maps the frame's whole
robust range onto 256 grey levels. On 12- and 16-bit data one grey level is
then 16 to 257 stored values, so text drawn 10-20 stored levels from its
background disappears before OCR sees it. This view maps each flat
neighbourhood's own values around its local mean, so a difference of a few
stored levels becomes tens of grey levels. Textured neighbourhoods (anatomy,
where such faint text is unreadable anyway) stay mid-grey: stretching them
would only hand Tesseract noise.
"""

from __future__ import annotations

import numpy as np

from icapdlp.pixels.ocr import _rank_filter

#: frames whose 8-bit OCR view spends more stored levels than this per grey level get the second view
MIN_LEVELS_PER_GREY = 3.0
#: neighbourhood (pixels) whose mean is the local background and whose spread decides flatness: wider
#: than the strokes of 40 px glyphs (about 7 px), narrow enough that a text patch near anatomy stays flat
WINDOW_PX = 15
#: a neighbourhood is flat when its values span at most this many stored levels (text of 20 levels on a
#: background with a few levels of noise fits; anatomy does not)
FLAT_MAX_RANGE = 64
#: grey levels per stored level in the view: 10 levels of text contrast become 60 grey levels
GAIN = 6.0


def _box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over size x size windows (edges replicated), by summed-area table."""
    half = size // 2
    padded = np.pad(a.astype(np.float64), ((half + 1, half), (half + 1, half)), mode="edge")
    padded[0, :] = 0
    padded[:, 0] = 0
    table = padded.cumsum(0).cumsum(1)
    rows, cols = a.shape
    total = (table[size:size + rows, size:size + cols] - table[:rows, size:size + cols]
             - table[size:size + rows, :cols] + table[:rows, :cols])
    return (total / (size * size)).astype(np.float32)


def levels_per_grey(frame: np.ndarray) -> float:
    """Stored levels one grey level of the ordinary OCR view spans (robust range / 255)."""
    lo, hi = np.percentile(frame[::4, ::4], (0.1, 99.9))
    return float(hi - lo) / 255.0


def local_view(frame: np.ndarray, photometric: str) -> np.ndarray | None:
    """The stretched 8-bit view of a deep grey frame, or None when the ordinary view loses nothing.

    Only integer MONOCHROME frames qualify: colour frames have 8-bit samples
    (or are rendered through their luminance, where faint text stays faint).
    """
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or frame.ndim != 2 or frame.dtype.kind not in "iu":
        return None
    if levels_per_grey(frame) < MIN_LEVELS_PER_GREY:
        return None
    values = frame.astype(np.int32)
    spread = _rank_filter(values, WINDOW_PX, np.maximum) - _rank_filter(values, WINDOW_PX, np.minimum)
    flat = spread <= FLAT_MAX_RANGE
    if not flat.any():
        return None
    mean = _box_mean(values, WINDOW_PX)
    view = np.clip(128.0 + GAIN * (values - mean), 0, 255)
    view[~flat] = 128.0
    return view.astype(np.uint8)
