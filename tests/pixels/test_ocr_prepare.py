"""OCR preparation and mapping of Tesseract's boxes back to frame coordinates (no Tesseract)."""

from __future__ import annotations

import numpy as np
import pytest

from icapdlp.pixels import ocr, regions
from icapdlp.pixels.geometry import Box


def _brute(a, size, reduce):
    half = size // 2
    p = np.pad(a, ((half, size - 1 - half), (half, size - 1 - half)), mode="edge")
    out = np.empty_like(a)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            out[y, x] = reduce(p[y:y + size, x:x + size])
    return out


@pytest.mark.parametrize("size", [1, 3, 5, 8, 21])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_rank_filter_matches_brute_force(size, dtype):
    a = np.random.default_rng(size).integers(0, 255, (23, 31)).astype(dtype)
    assert np.array_equal(ocr._rank_filter(a, size, np.maximum), _brute(a, size, np.max))
    assert np.array_equal(ocr._rank_filter(a, size, np.minimum), _brute(a, size, np.min))


@pytest.mark.parametrize("q", [0.1, 50.0, 99.9, 100.0])
def test_histogram_percentile_matches_numpy(q):
    values = np.random.default_rng(7).integers(0, 4096, 5001)
    expected = float(np.percentile(values, q))
    assert ocr.histogram_percentile(np.bincount(values), q) == pytest.approx(expected, abs=1e-9)


def test_polarities_make_light_and_dark_text_black_ink():
    g = np.full((500, 600), 40, dtype=np.uint8)
    g[100:110, 100:200] = 230  # light stroke on dark
    g[300:420, 300:500] = 220  # light plate ...
    g[350:360, 350:450] = 20  # ... with a dark stroke
    p = ocr.polarities(g)
    light, dark = p.light, p.dark
    assert p.scale == 1 and light.shape == dark.shape == (500, 600) and light.dtype == np.uint8
    assert p.light_mask[105, 150] and not p.light_mask[50, 50] and p.dark_mask[355, 400]
    assert light[105, 150] < 30 and light[50, 50] > 225  # light stroke became black ink, background white
    assert dark[355, 400] < 30 and dark[50, 50] > 225
    assert dark[105, 150] > 225  # the light stroke is not ink in the dark-text image


def test_small_frames_are_upscaled():
    p = ocr.polarities(np.zeros((256, 256), dtype=np.uint8))
    assert p.scale == 2 and p.light.shape == p.light_mask.shape == (512, 512)


def _data(*words):
    keys = ("text", "left", "top", "width", "height", "conf", "block_num", "par_num", "line_num")
    return {k: [w[i] for w in words] for i, k in enumerate(keys)}


def test_words_in_the_composite_map_back_to_their_crop_in_the_frame():
    m = regions.CROP_MARGIN
    placements = [regions.Placement(100, 40, 80, 30, 24, 0), regions.Placement(300, 200, 120, 40, 78, 1)]
    # composite x = m + (prepared x - src_x0); composite y = dst_y0 + (prepared y - src_y0); scale 2
    data = _data(("JOHN", m + 10, 24 + 5, 40, 20, 91, 1, 1, 1),
                 ("SMITH", m + 20, 78 + 10, 60, 20, 88, 2, 1, 1),
                 ("  ", 0, 0, 5, 5, -1, 0, 0, 0),
                 ("gap", m, 60, 10, 10, 50, 3, 1, 1))  # centre in the white gap between crops: dropped
    words = ocr.words_from_composite(data, placements, 250, 300, 2)
    assert [(w.text, w.box, w.line[0]) for w in words] == [
        ("JOHN", Box(55, 22, 75, 33), 0), ("SMITH", Box(160, 105, 190, 115), 1)]


def test_a_word_box_reaching_past_its_crop_is_clipped_to_the_crop():
    p = regions.Placement(10, 10, 50, 20, 24, 0)
    index, box = regions.to_source([p], 0, 20, 500, 40)  # wider and taller than the crop
    assert index == 0 and box == (10, 10, 60, 30)


def _frames_with_and_without_text_candidates():
    text = np.full((120, 200), 30, dtype=np.uint8)
    text[40:60, 20:30] = text[40:60, 40:50] = text[40:44, 20:50] = 220
    return text, np.zeros((64, 64), dtype=np.uint8)


def test_missing_tesseract_raises_ocr_unavailable(monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert not ocr.tesseract_available(ocr.PYTESSERACT)
    for frame in _frames_with_and_without_text_candidates():
        with pytest.raises(ocr.OcrUnavailable):
            ocr.read_words(frame, engine=ocr.PYTESSERACT)


def test_missing_tesseract_library_raises_ocr_unavailable():
    missing = "/nonexistent/libtesseract.so.5"
    assert not ocr.tesseract_available(ocr.LIBRARY, missing)
    for frame in _frames_with_and_without_text_candidates():
        with pytest.raises(ocr.OcrUnavailable):
            ocr.read_words(frame, engine=ocr.LIBRARY, library=missing)


def test_a_frame_without_text_candidates_starts_no_tesseract(monkeypatch):
    import pytesseract

    calls = []
    monkeypatch.setattr(pytesseract, "image_to_data", lambda *a, **k: calls.append(1))
    flat = np.random.default_rng(5).normal(80, 2, (200, 300)).clip(0, 255).astype(np.uint8)
    assert ocr.read_words(flat, engine=ocr.PYTESSERACT) == [] and calls == []
