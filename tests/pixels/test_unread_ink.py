"""A redaction grows over the unread ink of the one-line text region its words were read in (issue 13).

Tesseract reads small or textured lines in pieces and returns nothing for the glyphs between or beside
them; the text-candidate region still holds their ink. Canned OCR words carry the region (frame
coordinates) their crop was cut around, as ocr.words_from_composite gives them.
"""

from __future__ import annotations

from icapdlp.pixels import regions
from icapdlp.pixels.denylist import DenyList, normalize
from icapdlp.pixels.detect import DetectionPolicy, find_redactions
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord, words_from_composite
from icapdlp.pixels.options import PixelOptions
from tests.pixels.conftest import KeywordNer

ALLOW = frozenset(normalize(w) for w in PixelOptions().allow_words)
POLICY = DetectionPolicy(ALLOW, False, min_conf=30.0, min_score=0.5, padding=0)


def word(text, x0, y0, x1, y1, region=None, conf=95.0, rotation=0):
    return OcrWord(text, Box(x0, y0, x1, y1), conf, (0, 0, 0, 0), rotation, 0, region)


def test_a_name_grows_over_the_title_ocr_did_not_read_in_its_one_line_region():
    # "Dott. Irina Okonkwo": the title's ink is in the region (x 100-260), Tesseract returned the name only
    region = Box(100, 50, 260, 64)
    words = [word("Irina", 150, 51, 195, 62, region), word("Okonkwo", 200, 51, 260, 62, region)]
    out = find_redactions(words, KeywordNer({"Irina Okonkwo": "PERSON"}), DenyList({}), POLICY, 480, 640)
    assert [r.box for r in out] == [Box(100, 50, 260, 64)]


def test_growth_stops_short_of_a_word_read_and_kept_on_the_line():
    region = Box(10, 50, 260, 64)
    words = [word("PORTABLE", 10, 51, 80, 62, region), word("Irina", 150, 51, 195, 62, region),
             word("Okonkwo", 200, 51, 260, 62, region)]
    policy = DetectionPolicy(ALLOW, False, min_conf=30.0, min_score=0.5, padding=3)
    out = find_redactions(words, KeywordNer({"Irina Okonkwo": "PERSON"}), DenyList({}), policy, 480, 640)
    assert len(out) == 1 and out[0].box.x0 > 80  # the label keeps its pixels, padding included
    assert out[0].box.x0 < 150  # the unread ink between them goes


def test_a_region_taller_than_a_line_does_not_grow_the_box():
    # text merged with anatomy (or with the lines above and below) into one region says nothing of where
    # the value ends
    region = Box(0, 0, 400, 300)
    words = [word("Irina", 150, 51, 195, 62, region), word("Okonkwo", 200, 51, 260, 62, region)]
    out = find_redactions(words, KeywordNer({"Irina Okonkwo": "PERSON"}), DenyList({}), POLICY, 480, 640)
    assert [r.box for r in out] == [Box(150, 51, 260, 62)]


def test_a_turned_line_grows_along_its_reading_direction():
    # a side label read on the crop turned 90 degrees: the text runs down the frame, the region is tall
    region = Box(20, 100, 34, 300)
    words = [word("Irina", 21, 150, 33, 195, region, rotation=90),
             word("Okonkwo", 21, 200, 33, 260, region, rotation=90)]
    out = find_redactions(words, KeywordNer({"Irina Okonkwo": "PERSON"}), DenyList({}), POLICY, 480, 640)
    assert len(out) == 1 and out[0].box.y0 == 100 and out[0].box.y1 == 300 and out[0].box.x1 - out[0].box.x0 <= 14


def test_words_carry_the_region_of_their_crop_in_frame_coordinates():
    # a crop of prepared pixels at scale 2 (a small frame upscaled): the region maps back halved
    p = regions.Placement(92, 32, 116, 36, 24, 0, 0, 1, (100, 40, 200, 60))
    data = {"text": ["Okonkwo"], "left": [20], "top": [30], "width": [60], "height": [16],
            "block_num": [1], "par_num": [1], "line_num": [1], "conf": [90]}
    [w] = words_from_composite(data, [p], 240, 320, scale=2)
    assert w.region == Box(50, 20, 100, 30)


def test_a_number_glued_to_an_allow_listed_unit_is_no_name_for_the_statistical_ner():
    # a label read whole ("120kv"@82, where the old view read "a20kv"@24) that spaCy tags as a LOCATION
    words = [word("120kv", 542, 213, 576, 222, conf=82.0)]
    assert find_redactions(words, KeywordNer({"120kv": "LOCATION"}), DenyList({}), POLICY, 480, 640) == []
    # a word that only starts with digits and is no unit still counts
    words = [word("4Kingsmere", 100, 10, 180, 22, conf=90.0)]
    assert find_redactions(words, KeywordNer({"4Kingsmere": "LOCATION"}), DenyList({}), POLICY, 480, 640)


def test_a_small_line_grows_even_when_tesseract_boxed_its_pieces_short():
    # 8 px text: the region is 6 px tall, the pieces Tesseract returned 2-3 px; a single glyph read alone
    # inside the value's own region ("R" of "MRN-82843489") is no marker that stops the growth
    region = Box(409, 689, 471, 695)
    words = [word("R", 417, 691, 420, 693, region, conf=87.0), word("828434", 431, 692, 460, 695, region)]
    out = find_redactions(words, KeywordNer({"828434": "PATIENT_ID"}), DenyList({}), POLICY, 960, 768)
    assert [r.box for r in out] == [Box(409, 689, 471, 695)]


def test_a_word_of_two_glyphs_in_the_value_region_still_stops_the_growth():
    region = Box(60, 50, 260, 64)
    words = [word("AP", 60, 51, 80, 63, region), word("Irina", 150, 51, 195, 62, region),
             word("Okonkwo", 200, 51, 260, 62, region)]
    out = find_redactions(words, KeywordNer({"Irina Okonkwo": "PERSON"}), DenyList({}), POLICY, 480, 640)
    assert len(out) == 1 and 80 < out[0].box.x0 < 150


def _email_ner(text):
    from icapdlp.pixels.detect import Span

    start = text.find("s.brandt@rosenthal-hosp.org")
    return [] if start < 0 else [Span(start, start + 27, "EMAIL_ADDRESS", 0.9, "email")]


def test_of_two_unconfident_views_of_one_ink_neither_silences_the_other():
    # the right polarity read the address whole at confidence 0, the wrong one "PENTA" at 7: the higher
    # confidence of the garbage had dropped the address (seed 4000)
    right = OcrWord("s.brandt@rosenthal-hosp.org", Box(311, 919, 479, 931), 0.0, (18, 18, 1, 1), 0, 0)
    wrong = OcrWord("PENTA", Box(312, 919, 477, 930), 7.0, (19, 19, 1, 1), 0, 1)
    out = find_redactions([right, wrong], _email_ner, DenyList({}), POLICY, 1024, 832)
    assert [r.label for r in out] == ["EMAIL_ADDRESS"] and out[0].box.x0 <= 311 and out[0].box.x1 >= 479


def test_a_confident_view_still_wins_over_an_unconfident_one():
    right = OcrWord("Rosenthal", Box(100, 10, 180, 30), 13.0, (1, 1, 1, 1), 0, 0)
    general = OcrWord("General", Box(190, 10, 250, 30), 89.0, (1, 1, 1, 1), 0, 0)
    wrong = OcrWord("(EPSP", Box(102, 10, 178, 30), 33.0, (2, 2, 1, 1), 0, 1)
    ner = KeywordNer({"(EPSP": "PERSON"})
    assert find_redactions([right, general, wrong], ner, DenyList({}), POLICY, 480, 640) == []
