"""Overlay text touching dense texture (an ultrasound sector's speckle) gets crops of its own (issue 13).

The XY cut joins a label that touches a sector's edge, and every label beside it within half the
sector's height, into one region of speckle; Tesseract read little of the text there. Synthetic frames
only: seeded speckle in a wedge, text drawn with a Debian font.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from icapdlp.pixels import ocr, regions

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _sector_frame() -> tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A 480 x 640 screen: speckle in a wedge, a label touching its right edge, a label beside it."""
    rng = np.random.default_rng(5)
    rows, cols = 480, 640
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    ang = np.arctan2(xx - cols / 2, yy - 60)
    rad = np.hypot(xx - cols / 2, yy - 60)
    sector = (np.abs(ang) < 0.6) & (rad < 380) & (rad > 20)
    grey = np.where(sector, np.clip(rng.rayleigh(0.18, (rows, cols)) * 255, 0, 255), 0).astype(np.uint8)
    img = Image.fromarray(grey)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 9)
    touching = draw.textbbox((490, 347), "k.smith@example-hosp.org", font=font)
    draw.text((490, 347), "k.smith@example-hosp.org", font=font, fill=255)
    beside = draw.textbbox((528, 206), "Example Clinic", font=font)
    draw.text((528, 206), "Example Clinic", font=font, fill=255)
    return np.asarray(img), touching, beside


def _covers(region, box) -> bool:
    return region[0] <= box[0] + 2 and region[1] <= box[1] + 2 and region[3] >= box[3] - 2 \
        and region[2] > (box[0] + box[2]) / 2


def test_a_label_in_a_sector_region_comes_back_as_a_line_of_its_own():
    grey, touching, beside = _sector_frame()
    p = ocr.polarities(grey)
    big = [b for b in regions.find_regions(p.light_mask) if b[3] - b[1] > regions.MAX_FAINT_REGION_HEIGHT]
    assert len(big) == 1 and _covers(big[0], beside)  # the XY cut alone: one region of speckle and labels
    lines = regions.lines_beside_texture(p.light_mask, big[0])
    assert any(_covers(line, beside) and line[3] - line[1] <= 20 for line in lines)
    # the part of the touching label outside the speckle (the part inside is read with the sector)
    assert any(line[1] <= touching[1] + 2 and line[3] >= touching[3] - 2 and line[2] >= touching[2] - 2
               and line[2] - line[0] >= (touching[2] - touching[0]) / 2 for line in lines)
    # the speckle itself gives no line
    assert all(line[0] >= 440 for line in lines)


def test_the_lines_go_into_the_composite_beside_the_large_region():
    grey, touching, beside = _sector_frame()
    p = ocr.polarities(grey)
    _, placements = regions.compose(p.light, p.dark, p.light_mask, p.dark_mask)
    crops = [pl.region for pl in placements if pl.region is not None]
    assert any(r[3] - r[1] > regions.MAX_FAINT_REGION_HEIGHT for r in crops)  # still read whole
    assert any(_covers(r, beside) and r[3] - r[1] <= 20 for r in crops)
    assert any(pl.zoom > 1 for pl in placements if _covers(pl.region or (0, 0, 0, 0), beside))


def test_dense_texture_alone_gives_no_line():
    rng = np.random.default_rng(6)
    mask = rng.random((300, 300)) < 0.3
    assert regions.lines_beside_texture(mask, (0, 0, 300, 300)) == []
