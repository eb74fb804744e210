"""Misses found on the independent set (benchmarks/burned_in/diagnose.py, seed 6000), each fixed and pinned here.

The real analyzer (presidio + the pinned spaCy model) scores the OCR text, as the cleaner does:
a recogniser that finds a shape at a score under the policy's floor finds nothing, and a span spaCy
alone finds counts only on confidently read words (detect.NER_MIN_WORD_CONF), so shapes are asked of
the shape recognisers.
"""

from __future__ import annotations

import numpy as np
import pytest

from icapdlp.config import Settings
from icapdlp.pixels import build_cleaner, ner
from icapdlp.pixels.options import PixelOptions
from icapdlp.pixels.recognizers import STRUCTURAL
from icapdlp.report import ObjectReport
from tests.support.burned_in_independent import MASKED_SHARE, make_case

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


@pytest.mark.parametrize("style, seed, value", [
    ("jpeg-lossy", 6507, "s.haddad@"),  # a 32 px address read at confidence 27 among 8-10 px labels
    ("over-anatomy", 6200, "Rosenthal"),  # the dark view's "(EPSP"@33 had beaten "Rosenthal"@13
    ("black-on-white", 6102, "511-39-8899"),  # "SSN:" touching its value was analysed as "SSN511-39-8899"
    ("black-on-white", 6105, "MOREAU, Rafael"),  # "MOREAU," "Raise!"@38: a name printed FAMILY, Given
    ("white-on-black", 6001, "Lyon"),  # a 32 px city read "“Lyon"@24, under the confidence floor
    ("some-frames", 8704, "(555) 368-5894"),
    ("some-frames", 8700, "13-Jun-1954"),  # read "13-An-1954"@25 (seed 8000)
    ("rotated", 4405, "+31 10 952 2501"),
    ("us-banner", 4600, "23-Jun-1981"),
    # side labels touching the sector's speckle, cut into one 520 x 360 region with it (regions.lines_beside_texture)
    ("us-banner", 4606, "Klinikum Zuiderpark"),
    ("us-banner", 4607, "MRN: 5390782"),
    ("us-banner", 6600, "Amelie Duarte"),  # read "22-tun-3883"@0 (seed 4000)  # turned, "10" unread: "+31" and "952 2501" were two lines (seed 4000)  # monospace "368" "-5894" 0.7 glyph heights apart (seed 8000)
])
def test_phi_the_old_cleaner_left_readable_is_masked(style, seed, value):
    """Real Tesseract and the real analyzer on objects of the independent set (tuning seed 6000) where a
    PHI string was left wholly readable before this work."""
    case = make_case(seed, style)
    truth = next(t for t in case.truth if value in t.text)
    cleaner = build_cleaner(Settings())
    cleaner.clean(case.dataset, ObjectReport())
    mask = np.zeros((int(case.dataset.Rows), int(case.dataset.Columns)), dtype=bool)
    for r in cleaner.last_result.redactions[truth.frame or 0]:
        mask[r.box.y0:r.box.y1, r.box.x0:r.box.x1] = True
    x0, y0, x1, y1 = truth.box
    assert mask[y0:y1, x0:x1].mean() >= MASKED_SHARE


def test_the_every_word_pass_gets_the_shape_spans_without_spacy():
    """detect's second pass keeps shape spans only: the analyzer gives it the same shape spans as the full
    analysis (presidio's context words included: "SSN" raises the number's score over the floor), and none
    from spaCy's entity model, which it no longer runs there."""
    opts = PixelOptions()
    analyzer = ner.PresidioNer(opts.ner_model, opts.ner_entities, opts.recognizers)
    text = "SSN 427-38-2652 .\nJohn Smith .\nDr S. Okonkwo .\nMOREAU, Rafael .\n14/03/1962 .\n"
    full = {(s.start, s.end, s.entity, s.score) for s in analyzer(text) if s.recognizer in STRUCTURAL}
    shapes = analyzer.shapes(text)
    assert {(s.start, s.end, s.entity, s.score) for s in shapes} == full
    assert {text[s.start:s.end] for s in shapes if s.score >= opts.ner_min_score} >= {
        "427-38-2652", "Dr S. Okonkwo", "MOREAU, Rafael", "14/03/1962"}
    assert all(s.recognizer in STRUCTURAL for s in shapes)
