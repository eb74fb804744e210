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
from PIL import Image

#: a pixel is a text candidate when its local contrast reaches this share of the frame's strongest
#: (its 99.9th percentile). At 0.5 text drawn at 40 % of the brightest text's contrast was no
#: candidate at all; 0.31 keeps it (8/8 words read), 0.18 lets the background noise in
CANDIDATE_SHARE = 0.31
#: ... and at least this many grey levels: flat noise never makes candidates (the old floor)
MIN_CANDIDATE_CONTRAST = 12
#: a polarity whose candidates cover more than this share of the frame is texture (noise, film grain), not
#: text: strong noise put 77-81 % of a frame's pixels above the candidate threshold in both polarities, and
#: Tesseract read both whole polarities for 5.3 s of CPU and found nothing (text drawn over that noise was
#: not read either); photographs reach 31 %, text frames 20 % (an ultrasound screen's dark side)
TEXTURE_SHARE = 0.5
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
#: in the stretched view of a deep frame, regions taller than this (prepared pixels: three lines of 40 px
#: text) are stretched texture; faint overlay text there sits on a flat patch and makes regions of its lines
MAX_FAINT_REGION_HEIGHT = 160
#: inside a region taller than MAX_FAINT_REGION_HEIGHT, a pixel is texture when this share of the window around
#: it is ink (speckle and anatomy edges; a line of overlay text with empty rows around it stays below)
TEXTURE_WINDOW = 33
TEXTURE_DENSITY = 0.1
#: ... and what is left there is read again as a line when at most this tall and this many times wider than tall
MAX_TEXTURE_LINE_HEIGHT = 48
TEXTURE_LINE_ASPECT = 3.0
#: at most this many such lines (the widest) per large region: each is a crop Tesseract reads
MAX_TEXTURE_LINES = 16
#: a region this many times taller than wide may be a vertical line of text (side labels)
VERTICAL_ASPECT = 2.5
#: ... and at most this wide (prepared pixels; the height of 40 px glyphs on an upscaled frame, with margin):
#: a tall band of anatomy is no side label, and reading it turned cost seconds (MR2_UNCR: 5.8 s CPU)
MAX_VERTICAL_WIDTH = 96
#: at most this many vertical regions (the tallest) per polarity are read turned: each costs two crops
MAX_VERTICAL_REGIONS = 12
#: a tall region whose row runs are (median) this many times wider than tall is stacked horizontal lines
STACKED_LINE_ASPECT = 2.5
#: crops are upscaled so their text is about this tall (prepared pixels): Tesseract misreads 8-12 px glyphs
TARGET_GLYPH_PX = 14
MAX_ZOOM = 3


@dataclass(frozen=True)
class Placement:
    """Where a crop of the prepared frame sits in the composite (all in prepared pixels)."""

    src_x0: int
    src_y0: int
    width: int
    height: int
    dst_y0: int
    polarity: int  # 0 light text (white top-hat), 1 dark text (black top-hat)
    rotation: int = 0  # degrees counter-clockwise the crop was turned (np.rot90), 0, 90 or 270
    zoom: int = 1  # integer upscale of the crop before turning
    #: the text-candidate region the crop was cut around (x0, y0, x1, y1, prepared pixels, no margin); None
    #: for a whole polarity (text everywhere), which is no region
    region: tuple[int, int, int, int] | None = None

    @property
    def footprint(self) -> tuple[int, int]:
        """(rows, cols) the crop occupies in the composite."""
        h, w = self.height * self.zoom, self.width * self.zoom
        return (w, h) if self.rotation in (90, 270) else (h, w)


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


def _vertical_regions(own: np.ndarray, other: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Regions of text written along the columns (side labels turned 90 or 270 degrees).

    The same XY cut on the transposed mask, so a vertical line's glyphs join
    along it as a horizontal line's do; kept when clearly taller than wide.
    """
    out = []
    for tx0, ty0, tx1, ty1 in find_regions(own.T):
        box = (ty0, tx0, ty1, tx1)
        w, h = box[2] - box[0], box[3] - box[1]
        if h >= VERTICAL_ASPECT * w and MIN_REGION_HEIGHT <= w <= MAX_VERTICAL_WIDTH and _plausible(own, box) \
                and not looks_like_gaps(own, other, box) and not _stacked_lines(own, box):
            out.append(box)
    out.sort(key=lambda b: -(b[3] - b[1]))
    return out[:MAX_VERTICAL_REGIONS]


def lines_beside_texture(mask: np.ndarray, box: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """Line-shaped clusters of ink inside a large region once its dense texture is taken out.

    An ultrasound sector's speckle or a scan's anatomy forms one large region, and overlay text touching
    it (a label down the side of the sector, a name over tissue) is cut into the same region: Tesseract
    reads the whole crop at 1x as one sparse page and returns little of the text. Texture is dense over a
    large window, a line of overlay text is not (its rows have empty space above and below). The lines
    found here go in as crops of their own, besides the large region itself, which is still read.
    """
    x0, y0, x1, y1 = box
    sub = mask[y0:y1, x0:x1]
    density = _box_mean(sub.astype(np.float32), TEXTURE_WINDOW)
    sparse = sub & (density < TEXTURE_DENSITY)
    out = []
    for bx0, by0, bx1, by1 in find_regions(sparse):
        w, h = bx1 - bx0, by1 - by0
        line = (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1)
        if MIN_REGION_HEIGHT <= h <= MAX_TEXTURE_LINE_HEIGHT and w >= TEXTURE_LINE_ASPECT * h \
                and _plausible(mask, line):
            out.append(line)
    out.sort(key=lambda b: -(b[2] - b[0]))
    return out[:MAX_TEXTURE_LINES]


def _box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over size x size windows (zero outside), by summed-area table."""
    half = size // 2
    padded = np.zeros((a.shape[0] + size, a.shape[1] + size), dtype=np.float32)
    padded[half + 1:half + 1 + a.shape[0], half + 1:half + 1 + a.shape[1]] = a
    table = padded.cumsum(0).cumsum(1)
    rows, cols = a.shape
    total = (table[size:size + rows, size:size + cols] - table[:rows, size:size + cols]
             - table[size:size + rows, :cols] + table[:rows, :cols])
    return total / (size * size)


def _stacked_lines(mask: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """True when a tall region is horizontal lines one above the other (a text block), not one turned line.

    Cut along its empty rows: a block falls into runs much wider than tall,
    a turned line into glyph-sized runs.
    """
    x0, y0, x1, y1 = box
    sub = mask[y0:y1, x0:x1]
    runs = _runs(sub.any(axis=1), 0)
    if len(runs) < 2:
        return False
    shapes = sorted((int(sub[a:b].any(axis=0).sum()) / max(1, b - a)) for a, b in runs)
    return shapes[len(shapes) // 2] >= STACKED_LINE_ASPECT


def _zoom(glyph_px: int) -> int:
    """Upscale factor for a crop whose text is ``glyph_px`` tall (Tesseract reads 20+ px glyphs best)."""
    return max(1, min(MAX_ZOOM, -(-TARGET_GLYPH_PX // max(1, glyph_px))))


def compose(light: np.ndarray, dark: np.ndarray, light_mask: np.ndarray, dark_mask: np.ndarray,
            faint: bool = False) -> tuple[np.ndarray | None, list[Placement]]:
    """The composite image of every text-candidate crop (None when there is no candidate).

    Regions are found in each polarity's candidates separately, so light text
    beside a light plate holding dark text stays two regions, each read in its
    own polarity. Small text is upscaled per crop; regions taller than wide go
    in twice more, turned 90 degrees each way, so vertical side labels are read
    whichever way they were written (the reading of the wrong turn is garbage
    at low confidence, and the duplicate filter keeps the better one). Lines
    of text inside a large region of texture go in again on their own
    (:func:`lines_beside_texture`).

    Crops that would outgrow both whole polarities are given as both whole
    polarities (text everywhere). ``faint``: the stretched view of a deep
    frame (:mod:`icapdlp.pixels.contrast`), where only regions of text size are
    read and never whole polarities: a larger region there is stretched
    texture, not faint text (pydicom-data's RG3: one 1760 px region per
    polarity, 4.7 s of Tesseract on 427 words of noise, the ordinary view
    having read the frame already).
    """
    rows, cols = light.shape
    masks = tuple(np.zeros_like(m) if float(m.mean()) > TEXTURE_SHARE else m for m in (light_mask, dark_mask))
    chosen: list[tuple[tuple[int, int, int, int], int, int]] = []
    vertical: list[tuple[tuple[int, int, int, int], int, int]] = []
    beside: list[tuple[tuple[int, int, int, int], int, int]] = []  # lines cut out of large regions' texture
    for polarity, (own, other) in enumerate((masks, masks[::-1])):
        for box in find_regions(own):
            if faint and box[3] - box[1] > MAX_FAINT_REGION_HEIGHT:
                continue
            if _plausible(own, box) and not looks_like_gaps(own, other, box):
                chosen.append((box, polarity, 0))
                if not faint and box[3] - box[1] > MAX_FAINT_REGION_HEIGHT:
                    beside.extend((line, polarity, 0) for line in lines_beside_texture(own, box))
        for box in _vertical_regions(own, other):
            vertical.extend(((box, polarity, 90), (box, polarity, 270)))
    if not chosen and not vertical:
        return None, []
    chosen.sort(key=lambda c: (c[0][1], c[0][0], c[1]))
    placements = _place(chosen, rows, cols, GAP_ROWS)
    y = _bottom(placements)
    width = max(p.footprint[1] for p in placements) + 2 * CROP_MARGIN if placements else 0
    if y * width > 2 * (rows + GAP_ROWS) * (cols + 2 * CROP_MARGIN):
        if faint:
            return None, []
        # text everywhere (a scanned form) or noise read as regions: never more than both whole
        # polarities, which is what Tesseract was given before regions existed
        placements = [Placement(0, 0, cols, rows, GAP_ROWS, 0), Placement(0, 0, cols, rows, 2 * GAP_ROWS + rows, 1)]
    placements += _place(beside + vertical, rows, cols, _bottom(placements))
    y = _bottom(placements)
    width = max(p.footprint[1] for p in placements) + 2 * CROP_MARGIN
    out = np.full((y, width), 255, dtype=np.uint8)
    for p in placements:
        src = light if p.polarity == 0 else dark
        crop = src[p.src_y0:p.src_y0 + p.height, p.src_x0:p.src_x0 + p.width]
        if p.zoom > 1:
            crop = np.asarray(Image.fromarray(crop).resize((p.width * p.zoom, p.height * p.zoom),
                                                           Image.Resampling.BICUBIC))
        if p.rotation:
            crop = np.rot90(crop, k=p.rotation // 90)
        h, w = p.footprint
        out[p.dst_y0:p.dst_y0 + h, CROP_MARGIN:CROP_MARGIN + w] = crop
    return out, placements


def _place(chosen, rows: int, cols: int, y: int) -> list[Placement]:
    placements = []
    for box, polarity, rotation in chosen:
        x0, y0 = max(0, box[0] - CROP_MARGIN), max(0, box[1] - CROP_MARGIN)
        x1, y1 = min(cols, box[2] + CROP_MARGIN), min(rows, box[3] + CROP_MARGIN)
        glyph = (box[3] - box[1]) if rotation == 0 else (box[2] - box[0])
        p = Placement(x0, y0, x1 - x0, y1 - y0, y, polarity, rotation, _zoom(glyph), tuple(box))
        placements.append(p)
        y += p.footprint[0] + GAP_ROWS
    return placements


def _bottom(placements: list[Placement]) -> int:
    return max((p.dst_y0 + p.footprint[0] + GAP_ROWS for p in placements), default=GAP_ROWS)


def to_source(placements: list[Placement], left: int, top: int, width: int,
              height: int) -> tuple[int, tuple[int, int, int, int]] | None:
    """(placement index, box in prepared-frame pixels) of a composite word box, or None.

    Undoes the crop's turn and upscale: a word read on a turned crop gets the
    box its glyphs occupy in the frame (tall and narrow).
    """
    cy = top + height / 2
    for i, p in enumerate(placements):
        fh, fw = p.footprint
        if p.dst_y0 <= cy < p.dst_y0 + fh:
            u0, u1 = max(0, left - CROP_MARGIN), min(fw, left + width - CROP_MARGIN)
            v0, v1 = max(0, top - p.dst_y0), min(fh, top + height - p.dst_y0)
            if u1 <= u0 or v1 <= v0:
                return None
            zh, zw = p.height * p.zoom, p.width * p.zoom  # the upscaled crop before its turn
            if p.rotation == 90:  # np.rot90 k=1: footprint (row, col) came from crop (col, zw - 1 - row)
                r0, r1, c0, c1 = u0, u1, zw - v1, zw - v0
            elif p.rotation == 270:  # k=3: from crop (zh - 1 - col, row)
                r0, r1, c0, c1 = zh - u1, zh - u0, v0, v1
            else:
                r0, r1, c0, c1 = v0, v1, u0, u1
            z = p.zoom
            return i, (c0 // z + p.src_x0, r0 // z + p.src_y0, -(-c1 // z) + p.src_x0, -(-r1 // z) + p.src_y0)
    return None
