"""Text-candidate regions: where the crops go, which polarity is read, and what the composite holds."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from icapdlp.pixels import ocr, regions
from tests.support.burned_in import render_text_image

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _compose(grey: np.ndarray):
    p = ocr.polarities(grey)
    return p, regions.compose(p.light, p.dark, p.light_mask, p.dark_mask)


def _draw(grey: np.ndarray, xy: tuple[int, int], text: str, value: int, size: int = 20) -> tuple[int, ...]:
    img = Image.fromarray(grey)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, size)
    draw.text(xy, text, font=font, fill=value)
    grey[...] = np.asarray(img)
    return tuple(draw.textbbox(xy, text, font=font))


def test_regions_split_on_empty_rows_and_wide_column_gaps_but_not_between_letters():
    mask = np.zeros((100, 300), dtype=bool)
    for x in range(10, 60, 6):  # letters 3 px apart: one word
        mask[20:32, x:x + 3] = True
    mask[20:32, 200:240] = True  # same row, far away: a second item
    mask[60:72, 10:50] = True  # a second line
    assert sorted(regions.find_regions(mask)) == [(10, 20, 61, 32), (10, 60, 50, 72), (200, 20, 240, 32)]


def test_light_text_is_read_as_light_and_text_on_a_light_plate_as_dark_only():
    g = np.full((300, 500), 35, dtype=np.uint8)
    light_box = _draw(g, (30, 40), "Springfield", 230)
    g[180:230, 200:460] = 215  # a light plate
    dark_box = _draw(g, (215, 190), "1961-04-03", 15)
    p, (_, placements) = _compose(g)
    scale = p.scale
    assert scale == 2

    def polarities_over(box):
        x0, y0, x1, y1 = (v * scale for v in box)
        return {p.polarity for p in placements
                if p.src_x0 <= x0 and p.src_y0 <= y0 and p.src_x0 + p.width >= x1 and p.src_y0 + p.height >= y1}

    # thin light strokes: their gap image is not clearly fuller (0.42 vs 0.26 of the box), so both
    # readings are kept; the plate around dark text is (0.86 vs 0.13) and is not read as light text
    assert 0 in polarities_over(light_box)
    assert polarities_over(dark_box) == {1}


def test_composite_holds_every_drawn_string_in_far_fewer_pixels_than_two_frames():
    img, truth, _ = render_text_image(7, 480, 640, font_px=(12, 30))
    prepared, (composite, placements) = _compose(np.round(img * 255).astype(np.uint8))
    light, dark, scale = prepared.light, prepared.dark, prepared.scale
    assert composite is not None and composite.dtype == np.uint8
    assert composite.size < 0.6 * 2 * light.size  # the old layout was both polarities of the whole frame
    for t in truth:
        x0, y0, x1, y1 = (v * scale for v in t.box)
        assert any(p.src_x0 <= x0 and p.src_y0 <= y0 and p.src_x0 + p.width >= x1 and p.src_y0 + p.height >= y1
                   for p in placements), t.text
    for p in placements:  # each crop is copied from its polarity image, white around it
        if p.zoom > 1:
            continue  # upscaled small text (test_small_text_is_upscaled_and_maps_back)
        src = light if p.polarity == 0 else dark
        dst = composite[p.dst_y0:p.dst_y0 + p.height, regions.CROP_MARGIN:regions.CROP_MARGIN + p.width]
        assert np.array_equal(dst, src[p.src_y0:p.src_y0 + p.height, p.src_x0:p.src_x0 + p.width])
        assert (composite[p.dst_y0 - regions.GAP_ROWS:p.dst_y0] == 255).all()


def test_blank_and_flat_frames_have_no_candidates():
    flat = np.full((200, 300), 90, dtype=np.uint8)
    assert _compose(flat)[1] == (None, [])
    noisy = np.random.default_rng(5).normal(80, 2, (200, 300)).clip(0, 255).astype(np.uint8)
    assert _compose(noisy)[1] == (None, [])


def test_strong_noise_is_texture_and_goes_to_no_tesseract_call():
    """Grain with a wide spread puts most pixels over the candidate threshold; reading both whole polarities
    of it cost 5 s of Tesseract and found nothing."""
    for seed, spread in ((1, 40), (2, 60)):
        noisy = np.random.default_rng(seed).normal(128, spread, (400, 500)).clip(0, 255).astype(np.uint8)
        assert _compose(noisy)[1] == (None, [])


def test_text_much_fainter_than_the_brightest_text_is_still_a_candidate():
    g = (np.random.default_rng(1).normal(38, 8, (480, 640))).clip(0, 255).astype(np.uint8)
    _draw(g, (40, 40), "BRIGHT 12345", 250)
    x0, y0, x1, y1 = _draw(g, (40, 200), "Faint Garcia 998877", 38 + 89)  # 40 % of the bright contrast
    _, (_, placements) = _compose(g)
    covered = np.zeros(x1 - x0, dtype=bool)
    for p in placements:
        if p.polarity == 0 and p.src_y0 <= y0 and p.src_y0 + p.height >= y1:
            covered[max(0, p.src_x0 - x0):max(0, p.src_x0 + p.width - x0)] = True
    assert covered.all()


def test_a_frame_full_of_text_is_never_given_to_tesseract_larger_than_both_whole_polarities():
    g = np.full((400, 500), 30, dtype=np.uint8)
    _draw(g, (5, 0), "A LONG HEADER LINE ACROSS THE WHOLE FRAME 0123456789", 220, size=14)  # a wide crop
    for row in range(20, 390, 14):  # 27 lines of small text: many crops, each with margins and gaps
        _draw(g, (10, row), "ID 12345 name", 220, size=10)
        _draw(g, (260, row), "other 987", 220, size=10)
    p, (composite, placements) = _compose(g)
    rows, cols = p.light.shape
    assert composite.size <= (2 * (rows + regions.GAP_ROWS) + regions.GAP_ROWS) * (cols + 2 * regions.CROP_MARGIN)
    assert sorted(pl.polarity for pl in placements) == [0, 1]
    assert all((pl.src_x0, pl.src_y0, pl.width, pl.height) == (0, 0, cols, rows) for pl in placements)
    assert np.array_equal(composite[placements[1].dst_y0:placements[1].dst_y0 + rows,
                                    regions.CROP_MARGIN:regions.CROP_MARGIN + cols], p.dark)


def test_the_faint_view_reads_text_sized_regions_and_never_whole_polarities():
    """The stretched view of a deep frame: crops outgrowing both whole polarities are stretched texture, and
    that view is not read at all (the ordinary view of the same frame still is)."""
    g = np.full((400, 500), 30, dtype=np.uint8)
    for row in range(20, 390, 14):
        _draw(g, (10, row), "ID 12345 name", 220, size=10)
        _draw(g, (260, row), "other 987", 220, size=10)
    p = ocr.polarities(g)
    assert regions.compose(p.light, p.dark, p.light_mask, p.dark_mask, faint=True) == (None, [])
    few = np.full((400, 500), 30, dtype=np.uint8)
    _draw(few, (10, 20), "ID 12345 name", 220, size=10)
    q = ocr.polarities(few)
    composite, placements = regions.compose(q.light, q.dark, q.light_mask, q.dark_mask, faint=True)
    assert composite is not None and placements
    big = np.zeros((600, 500), dtype=np.uint8)
    big[::3, :] = 200  # one tall region of fine texture the XY cut cannot split
    big[:, ::5] = 120
    r = ocr.polarities(big)
    assert any(pl.height > regions.MAX_FAINT_REGION_HEIGHT for pl in
               regions.compose(r.light, r.dark, r.light_mask, r.dark_mask)[1])
    assert all(pl.height <= regions.MAX_FAINT_REGION_HEIGHT + 2 * regions.CROP_MARGIN for pl in
               regions.compose(r.light, r.dark, r.light_mask, r.dark_mask, faint=True)[1])
