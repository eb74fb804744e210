"""Fakes for the pixel tests: OCR that 'reads' the generator's ground truth, and a keyword NER."""

from __future__ import annotations

import pytest

from icapdlp.pixels.detect import Span
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord


def truth_reader(truth):
    """An OCR stand-in returning each drawn string's words with boxes split along x."""
    def read(grey8, language="eng"):
        words = []
        for n, t in enumerate(truth):
            parts = t.text.split()
            x0, y0, x1, y1 = t.box
            step = (x1 - x0) / max(1, len(parts))
            for k, part in enumerate(parts):
                box = Box(int(x0 + k * step), y0, int(x0 + (k + 1) * step) if k + 1 < len(parts) else x1, y1)
                words.append(OcrWord(part, box, 95.0, (0, n, 0, 0)))
        return words
    return read


class KeywordNer:
    """Tags listed words as entities, like a tiny deterministic NER model."""

    def __init__(self, entities: dict[str, str]):
        self.entities = entities
        self.calls: list[str] = []

    def __call__(self, text: str) -> list[Span]:
        self.calls.append(text)
        spans = []
        for word, entity in self.entities.items():
            start = text.find(word)
            while start >= 0:
                spans.append(Span(start, start + len(word), entity, 0.85))
                start = text.find(word, start + 1)
        return spans


@pytest.fixture
def city_ner():
    from tests.support.burned_in import CITIES

    return KeywordNer({c: "LOCATION" for c in CITIES})
