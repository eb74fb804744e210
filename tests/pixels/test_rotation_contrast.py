"""Detection that does not depend on the header: turned text, upscaled small text, faint text on deep data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont

from icapdlp.config import Settings
from icapdlp.pixels import build_cleaner, contrast, ocr, regions
from icapdlp.pixels import frames as frames_mod
from icapdlp.pixels.detect import group_lines
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _text(size: int, text: str = "Okonkwo 4417729") -> np.ndarray:
    font = ImageFont.truetype(FONT, size)
    img = Image.new("L", (int(font.getlength(text)) + 8, size + 10), 0)
    ImageDraw.Draw(img).text((4, 3), text, font=font, fill=255)
    return np.asarray(img)


def _frame_with(block: np.ndarray, rows=400, cols=500, at=(20, 30)) -> np.ndarray:
    frame = np.full((rows, cols), 20, np.uint8)
    y, x = at
    frame[y:y + block.shape[0], x:x + block.shape[1]] = np.maximum(20, block)
    return frame


def _compose(frame):
    p = ocr.polarities(frame)
    return p, regions.compose(p.light, p.dark, p.light_mask, p.dark_mask)


def test_a_vertical_line_goes_in_turned_both_ways_and_maps_back_to_its_place():
    line = np.rot90(_text(20), 1)  # reads bottom to top, as a side label
    frame = _frame_with(line, at=(40, 10))
    p, (composite, placements) = _compose(frame)
    turned = [pl for pl in placements if pl.rotation]
    assert {pl.rotation for pl in turned} == {90, 270}
    for pl in turned:  # a word box covering the whole footprint maps back onto the vertical line
        fh, fw = pl.footprint
        _, (x0, y0, x1, y1) = regions.to_source([pl], regions.CROP_MARGIN, pl.dst_y0, fw, fh)
        assert (x0, y0, x1 - x0, y1 - y0) == (pl.src_x0, pl.src_y0, pl.width, pl.height)
        assert y1 - y0 > 3 * (x1 - x0)
    horizontal = _frame_with(_text(20))
    assert not any(pl.rotation for pl in _compose(horizontal)[1][1])


def test_a_paragraph_of_horizontal_lines_is_not_taken_for_vertical_text():
    block = np.concatenate([_text(10, "Rows of text stacked") for _ in range(12)], axis=0)
    p, (composite, placements) = _compose(_frame_with(block))
    assert not any(pl.rotation for pl in placements)


def test_turned_mapping_is_the_inverse_of_rot90():
    """A pixel marked in a crop, turned and upscaled as compose does, maps back to where it was."""
    for rotation in (0, 90, 270):
        for zoom in (1, 2, 3):
            pl = regions.Placement(50, 60, 30, 12, 24, 0, rotation, zoom)
            crop = np.zeros((12 * zoom, 30 * zoom), np.uint8)
            crop[4 * zoom:5 * zoom, 7 * zoom:8 * zoom] = 1  # source pixel (x=57, y=64)
            turned = np.rot90(crop, k=rotation // 90)
            ys, xs = np.nonzero(turned)
            left, top = regions.CROP_MARGIN + int(xs.min()), pl.dst_y0 + int(ys.min())
            _, box = regions.to_source([pl], left, top, int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1)
            assert box == (57, 64, 58, 65), (rotation, zoom, box)


def test_small_text_is_upscaled_and_maps_back():
    p, (composite, placements) = _compose(_frame_with(_text(8), rows=600, cols=700))
    assert placements and max(pl.zoom for pl in placements) >= 2
    big = _compose(_frame_with(_text(36), rows=600, cols=700))[1][1]
    assert all(pl.zoom == 1 for pl in big)


def test_words_read_on_turned_crops_form_their_own_lines():
    # "Dr" "Okonkwo" written top to bottom at x 10-22 (read on the crop turned 90), and a horizontal word beside
    words = [OcrWord("Okonkwo", Box(10, 60, 22, 140), 95.0, (0, 1, 1, 1), 90),
             OcrWord("Dr", Box(10, 30, 22, 52), 95.0, (0, 1, 1, 1), 90),
             OcrWord("Dr", Box(30, 30, 52, 42), 95.0, (1, 1, 1, 1), 0)]
    lines = group_lines(words)
    turned = [line for line in lines if line[0].rotation == 90]
    assert [[w.text for w in line] for line in turned] == [["Dr", "Okonkwo"]]


def _deep_frame(bits: int, delta: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Anatomy-like texture over the whole range, and text ``delta`` stored levels above a flat patch."""
    rng = np.random.default_rng(bits)
    top = (1 << bits) - 1
    frame = (rng.random((300, 400)) * top).astype(np.uint16)  # full range: one grey level is many levels
    level = top // 3
    frame[180:260, 20:380] = level + rng.integers(-1, 2, (80, 360))
    text = _text(24, "HX4417729 Okonkwo") > 128
    frame[200:200 + text.shape[0], 40:40 + text.shape[1]][text] += delta
    return frame, (40, 200, 40 + text.shape[1], 200 + text.shape[0])


def test_faint_text_on_deep_data_is_visible_in_the_stretched_view_only():
    for bits in (12, 16):
        frame, (x0, y0, x1, y1) = _deep_frame(bits, 12)
        ordinary = ocr.polarities(np.ascontiguousarray(
            np.clip((frame.astype(np.float64) / ((1 << bits) - 1)) * 255, 0, 255).astype(np.uint8)))
        k = ordinary.scale  # prepared images of small frames are upscaled
        assert not ordinary.light_mask[y0 * k:y1 * k, x0 * k:x1 * k].any()  # 12 of 4095/65535 levels: < 1 grey
        view = contrast.local_view(frame, "MONOCHROME2")
        assert view is not None
        stretched = ocr.polarities(view)
        assert stretched.light_mask[y0 * k:y1 * k, x0 * k:x1 * k].sum() > 200
        assert not stretched.light_mask[:150 * k].any()  # the textured part stays mid-grey: no candidates


def test_no_second_view_for_eight_bit_or_colour():
    frame = np.random.default_rng(1).integers(0, 256, (64, 64)).astype(np.uint8)
    assert contrast.local_view(frame, "MONOCHROME2") is None
    assert contrast.local_view(np.zeros((8, 8, 3), np.uint16), "RGB") is None


def test_a_tall_wide_band_is_not_read_turned():
    """A tall bright band 150 px wide (a bone, a sector edge) is no side label: not read turned (it cost seconds)."""
    frame = np.full((600, 700), 20, np.uint8)
    rng = np.random.default_rng(2)
    frame[50:550, 300:450] = rng.integers(120, 255, (500, 150))
    assert not any(pl.rotation for pl in _compose(frame)[1][1])


@pytest.mark.slow
def test_a_deep_radiograph_whose_stretched_view_is_texture_costs_no_second_reading():
    """pydicom-data's RG3 (1760 x 1760, 12-bit CR): its stretched view once went to Tesseract as both whole
    polarities (427 words of noise, 4.7 s). The cleaner's faint-text reader now reads nothing there; the
    ordinary reader still reads the ordinary view."""
    data_store = pytest.importorskip("data_store")
    path = Path(data_store.__path__[0]) / "data" / "RG3_UNCR.dcm"
    if not path.exists():
        pytest.skip("pydicom-data is not installed")
    ds = pydicom.dcmread(path)
    decoded = frames_mod.decode(ds, 1 << 30)
    view = contrast.local_view(decoded.frames[0], decoded.photometric)
    assert view is not None
    cleaner = build_cleaner(Settings())
    assert cleaner.read_faint_words(view, "eng") == []


def test_pieces_of_a_turned_value_with_a_group_unread_between_them_stay_one_line():
    """ "+31" and "952 2501" read on a turned crop, "10" between them lost: 3.75 glyph heights apart, one line
    (a horizontal line splits there: separate overlay items on one row stand that far apart)."""
    def turned(text, y0, y1):
        return OcrWord(text, Box(58, y0, 70, y1), 90.0, (0, 0, 0, 0), rotation=270)
    words = [turned("+31", 908, 939), turned("952", 833, 863), turned("2501", 779, 820)]
    assert [[w.text for w in line] for line in group_lines(words)] == [["+31", "952", "2501"]]
    flat = [OcrWord(t, Box(x0, 58, x1, 70), 90.0, (0, 0, 0, 0)) for t, x0, x1 in (("+31", 0, 31), ("952", 76, 106))]
    assert len(group_lines(flat)) == 2
