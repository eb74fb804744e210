"""Filling boxes in stored pixel values with the value that displays as black."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydicom.dataset import Dataset

from icapdlp.pixels.geometry import Box


def fill_value(frames: np.ndarray, photometric: str, ds: Dataset) -> np.ndarray:
    """Per-sample fill: darkest stored value for grey, black for colour, darkest palette entry."""
    if photometric == "MONOCHROME2":
        return np.array(frames.min(), dtype=frames.dtype)
    if photometric == "MONOCHROME1":
        return np.array(frames.max(), dtype=frames.dtype)
    if photometric in ("RGB", "YBR_ICT", "YBR_RCT"):
        return np.zeros(3, dtype=frames.dtype)
    if photometric.startswith("YBR_FULL"):
        mid = 1 << (int(ds.get("BitsStored", frames.dtype.itemsize * 8)) - 1)
        return np.array([0, mid, mid], dtype=frames.dtype)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        first_mapped = int(ds.RedPaletteColorLookupTableDescriptor[1])
        entries = int(ds.RedPaletteColorLookupTableDescriptor[0]) or 65536
        indices = np.arange(first_mapped, first_mapped + entries).astype(frames.dtype)
        rgb = apply_color_lut(indices, ds).astype(np.float64)
        darkest = int(np.argmin(rgb @ np.array([0.299, 0.587, 0.114])))
        return np.array(indices[darkest], dtype=frames.dtype)
    raise ValueError(photometric)


def fill_boxes(frame: np.ndarray, boxes: Iterable[Box], value: np.ndarray) -> int:
    """Fill ``boxes`` in one frame in place; returns how many pixels were set."""
    n = 0
    for b in boxes:
        frame[b.y0:b.y1, b.x0:b.x1] = value
        n += b.width * b.height
    return n
