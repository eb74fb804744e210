"""Misses found on the independent set (benchmarks/burned_in/diagnose.py, seed 6000), each fixed and pinned here.

The real analyzer (presidio + the pinned spaCy model) scores the OCR text, as the cleaner does:
a recogniser that finds a shape at a score under the policy's floor finds nothing, and a span spaCy
alone finds counts only on confidently read words (detect.NER_MIN_WORD_CONF), so shapes are asked of
the shape recognisers.
"""

from __future__ import annotations

import pytest

from icapdlp.pixels import ner
from icapdlp.pixels.options import PixelOptions
from icapdlp.pixels.recognizers import STRUCTURAL

pytestmark = pytest.mark.slow


def _scored(text: str) -> set[str]:
    opts = PixelOptions()
    spans = ner.PresidioNer(opts.ner_model, opts.ner_entities, opts.recognizers)(text)
    return {text[s.start:s.end] for s in spans if s.score >= opts.ner_min_score and s.recognizer in STRUCTURAL}


@pytest.mark.parametrize("text, value", [
    ("66.87.2618 .\n", "66.87.2618"),  # 06.07.2018 with OCR's 0/6/8 confusions
    ("H6pital Glenmore .\n", "H6pital Glenmore"),  # Hôpital with its accent read as a digit
])
def test_shapes_ocr_reads_are_scored_above_the_floor(text, value):
    assert value in _scored(text)
