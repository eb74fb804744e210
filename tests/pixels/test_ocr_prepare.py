"""OCR preparation and mapping of Tesseract's boxes back to frame coordinates (no Tesseract)."""

from __future__ import annotations

import numpy as np
import pytest

from icapdlp.pixels import ocr
from icapdlp.pixels.geometry import Box


def _brute(a, size, reduce):
    half = size // 2
    p = np.pad(a, half, mode="edge")
    out = np.empty_like(a)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            out[y, x] = reduce(p[y:y + size, x:x + size])
    return out


@pytest.mark.parametrize("size", [1, 3, 5, 21])
def test_rank_filter_matches_brute_force(size):
    a = np.random.default_rng(size).integers(0, 255, (23, 31)).astype(np.float32)
    assert np.array_equal(ocr._rank_filter(a, size, np.maximum), _brute(a, size, np.max))
    assert np.array_equal(ocr._rank_filter(a, size, np.minimum), _brute(a, size, np.min))


def test_prepare_puts_light_text_on_top_and_dark_text_below_as_black_ink():
    g = np.full((500, 600), 40, dtype=np.uint8)
    g[100:110, 100:200] = 230  # light stroke on dark
    g[300:420, 300:500] = 220  # light plate ...
    g[350:360, 350:450] = 20  # ... with a dark stroke
    image, scale = ocr.prepare(g)
    arr = np.asarray(image)
    assert scale == 1 and arr.shape == (2 * 500 + ocr.SEPARATOR_ROWS, 600)
    top, bottom = arr[:500], arr[500 + ocr.SEPARATOR_ROWS:]
    assert top[105, 150] < 30 and top[50, 50] > 225  # light stroke became black ink, background white
    assert bottom[355, 400] < 30 and bottom[50, 50] > 225
    assert bottom[105, 150] > 225  # the light stroke is not ink in the dark-text half


def test_small_frames_are_upscaled():
    _, scale = ocr.prepare(np.zeros((256, 256), dtype=np.uint8))
    assert scale == 2


def _data(*words):
    keys = ("text", "left", "top", "width", "height", "conf", "block_num", "par_num", "line_num")
    return {k: [w[i] for w in words] for i, k in enumerate(keys)}


def test_words_from_the_bottom_half_and_upscaled_images_map_back():
    rows, cols, scale = 200, 300, 2
    half = rows * scale + ocr.SEPARATOR_ROWS
    data = _data(("JOHN", 20, 40, 60, 20, 91, 1, 1, 1), ("SMITH", 100, half + 40, 80, 20, 88, 2, 1, 1),
                 ("  ", 0, 0, 5, 5, -1, 0, 0, 0), ("edge", 590, 390, 30, 30, 50, 3, 1, 1))
    words = ocr.words_from_data(data, rows, cols, scale)
    assert [(w.text, w.box, w.line[0]) for w in words] == [
        ("JOHN", Box(10, 20, 40, 30), 0), ("SMITH", Box(50, 20, 90, 30), 1), ("edge", Box(295, 195, 300, 200), 0)]


def test_missing_tesseract_raises_ocr_unavailable(monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert not ocr.tesseract_available()
    with pytest.raises(ocr.OcrUnavailable):
        ocr.read_words(np.zeros((64, 64), dtype=np.uint8))
