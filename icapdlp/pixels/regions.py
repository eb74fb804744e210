"""Text-candidate regions of a prepared frame, packed into one small image for one Tesseract call.

Tesseract's time per frame is start-up (about 60 ms, fixed: loading the
language data and its ambiguity tables) plus recognition, and recognition is
paid per word-like blob it finds. The two-polarity page gave it every text
twice: once as ink, once as the gaps between the strokes (a "word" of garbage
that the LSTM reads at full cost and that NER sometimes tags). Here we cut the
frame into regions where the local contrast is text-like (an XY cut of the
thresholded top-hats), keep per region the polarity whose ink looks like
strokes (the smaller ink fraction: strokes cover less of their box than the
gaps between them do), keep both when that is not clear, and stack the crops
with white gaps. Word boxes are mapped back through the placements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: a pixel is a text candidate when its local contrast reaches this share of the frame's strongest
#: (its 99.9th percentile). At 0.5 text drawn at 40 % of the brightest text's contrast was no
#: candidate at all; 0.31 keeps it (8/8 words read), 0.18 lets the background noise in
CANDIDATE_SHARE = 0.31
#: ... and at least this many grey levels: flat noise never makes candidates (the old floor)
MIN_CANDIDATE_CONTRAST = 12
#: regions lower than this (prepared pixels) are noise specks, not glyphs (12 px text is 9+ px tall)
MIN_REGION_HEIGHT = 5
#: ... and regions with fewer ink pixels than this are specks too
MIN_REGION_INK = 12
#: empty rows that still join two bands into one region (lines of one block, accents)
ROW_GAP = 2
#: empty columns that still join glyphs into one region, in band heights (word spaces join,
#: separate overlay items further apart than a line's height split)
COLUMN_GAP_HEIGHTS = 0.5
MIN_COLUMN_GAP = 6
#: white margin kept around each crop; Tesseract misses glyphs touching the image edge
CROP_MARGIN = 8
#: white rows between stacked crops, so no Tesseract line spans two crops
GAP_ROWS = 24
#: the smaller ink fraction below this share of the larger one decides the polarity; otherwise both
#: polarities of the region go in (measured on the synthetic set, see the benchmark README)
POLARITY_RATIO = 0.6


@dataclass(frozen=True)
class Placement:
    """Where a crop of the prepared frame sits in the composite (all in prepared pixels)."""

    src_x0: int
    src_y0: int
    width: int
    height: int
    dst_y0: int
    polarity: int  # 0 light text (white top-hat), 1 dark text (black top-hat)


def _runs(profile: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """[start, end) runs of True in ``profile``, joining runs separated by at most ``max_gap`` False."""
    idx = np.flatnonzero(profile)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def find_regions(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of ink clusters: recursive cuts along empty rows and columns."""
    out: list[tuple[int, int, int, int]] = []
    stack = [(0, 0, mask.shape[1], mask.shape[0])]
    while stack:
        x0, y0, x1, y1 = stack.pop()
        sub = mask[y0:y1, x0:x1]
        pieces = []
        for a, b in _runs(sub.any(axis=1), ROW_GAP):
            gap = max(MIN_COLUMN_GAP, int(COLUMN_GAP_HEIGHTS * (b - a)))
            for c, d in _runs(sub[a:b].any(axis=0), gap):
                pieces.append((x0 + c, y0 + a, x0 + d, y0 + b))
        if pieces == [(x0, y0, x1, y1)]:
            out.append(pieces[0])
        else:
            stack.extend(pieces)
    return out


def _plausible(mask: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return y1 - y0 >= MIN_REGION_HEIGHT and int(mask[y0:y1, x0:x1].sum()) >= MIN_REGION_INK


def looks_like_gaps(own: np.ndarray, other: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """True when a region's ink is the gaps between the other polarity's strokes (or a plate).

    Strokes cover less of their box than the gaps and the plate around them;
    only a clear difference decides, otherwise both readings are kept.
    """
    x0, y0, x1, y1 = box
    f_own = float(own[y0:y1, x0:x1].mean())
    f_other = float(other[y0:y1, x0:x1].mean())
    return 0.0 < f_other < POLARITY_RATIO * f_own


def candidates(contrast: np.ndarray, strongest: float) -> np.ndarray:
    """Text-candidate pixels of one polarity's local-contrast image."""
    return contrast >= max(CANDIDATE_SHARE * strongest, MIN_CANDIDATE_CONTRAST)


def compose(light: np.ndarray, dark: np.ndarray, light_mask: np.ndarray,
            dark_mask: np.ndarray) -> tuple[np.ndarray | None, list[Placement]]:
    """The composite image of every text-candidate crop (None when there is no candidate).

    Regions are found in each polarity's candidates separately, so light text
    beside a light plate holding dark text stays two regions, each read in its
    own polarity.
    """
    rows, cols = light.shape
    masks = (light_mask, dark_mask)
    chosen: list[tuple[tuple[int, int, int, int], int]] = []
    for polarity, (own, other) in enumerate((masks, masks[::-1])):
        for box in find_regions(own):
            if _plausible(own, box) and not looks_like_gaps(own, other, box):
                chosen.append((box, polarity))
    if not chosen:
        return None, []
    chosen.sort(key=lambda c: (c[0][1], c[0][0], c[1]))
    placements: list[Placement] = []
    y = GAP_ROWS
    for box, polarity in chosen:
        x0, y0 = max(0, box[0] - CROP_MARGIN), max(0, box[1] - CROP_MARGIN)
        x1, y1 = min(cols, box[2] + CROP_MARGIN), min(rows, box[3] + CROP_MARGIN)
        placements.append(Placement(x0, y0, x1 - x0, y1 - y0, y, polarity))
        y += (y1 - y0) + GAP_ROWS
    width = max(p.width for p in placements) + 2 * CROP_MARGIN
    if y * width > 2 * (rows + GAP_ROWS) * (cols + 2 * CROP_MARGIN):
        # text everywhere (a scanned form) or noise read as regions: never more than both whole
        # polarities, which is what Tesseract was given before regions existed
        placements = [Placement(0, 0, cols, rows, GAP_ROWS, 0), Placement(0, 0, cols, rows, 2 * GAP_ROWS + rows, 1)]
        y, width = 2 * (rows + GAP_ROWS) + GAP_ROWS, cols + 2 * CROP_MARGIN
    out = np.full((y, width), 255, dtype=np.uint8)
    for p in placements:
        src = light if p.polarity == 0 else dark
        out[p.dst_y0:p.dst_y0 + p.height, CROP_MARGIN:CROP_MARGIN + p.width] = \
            src[p.src_y0:p.src_y0 + p.height, p.src_x0:p.src_x0 + p.width]
    return out, placements


def to_source(placements: list[Placement], left: int, top: int, width: int,
              height: int) -> tuple[int, tuple[int, int, int, int]] | None:
    """(placement index, box in prepared-frame pixels) of a composite word box, or None."""
    cy = top + height / 2
    for i, p in enumerate(placements):
        if p.dst_y0 <= cy < p.dst_y0 + p.height:
            x0 = max(0, left - CROP_MARGIN) + p.src_x0
            x1 = min(p.width, left + width - CROP_MARGIN) + p.src_x0
            y0 = max(0, top - p.dst_y0) + p.src_y0
            y1 = min(p.height, top + height - p.dst_y0) + p.src_y0
            if x1 <= x0 or y1 <= y0:
                return None
            return i, (x0, y0, x1, y1)
    return None
