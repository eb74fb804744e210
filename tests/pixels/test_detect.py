"""Box mapping: canned OCR words -> entity spans / header matches -> padded, merged boxes."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from icapdlp.pixels.denylist import DenyList, build_deny_list, normalize
from icapdlp.pixels.detect import DetectionPolicy, Span, find_redactions, group_lines
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord
from icapdlp.pixels.options import PixelOptions
from tests.pixels.conftest import KeywordNer

ALLOW = frozenset(normalize(w) for w in PixelOptions().allow_words)


def word(text, x0, y0, x1, y1, conf=95.0):
    return OcrWord(text, Box(x0, y0, x1, y1), conf, (0, 0, 0, 0))


def policy(all_text=False, padding=2):
    return DetectionPolicy(ALLOW, all_text, min_conf=30.0, min_score=0.5, padding=padding)


def header(**values) -> DenyList:
    ds = Dataset()
    for k, v in values.items():
        setattr(ds, k, v)
    return build_deny_list(ds)


def no_ner(text):
    return []


def test_header_name_words_become_one_padded_box_across_the_gap():
    words = [word("SMITH,", 100, 50, 160, 70), word("JOHN", 170, 50, 220, 70), word("AP", 400, 50, 420, 70)]
    out = find_redactions(words, no_ner, header(PatientName="SMITH^JOHN"), policy(padding=2), 480, 640)
    assert [(r.box, r.source, r.label) for r in out] == [(Box(98, 48, 222, 72), "header-match", "person-name")]


def test_ner_span_maps_to_the_words_it_touches_with_entity_label():
    ner = KeywordNer({"Maria Garcia": "PERSON"})
    words = [word("Dr", 10, 10, 30, 30), word("Maria", 40, 10, 90, 30), word("Garcia", 100, 10, 160, 30)]
    out = find_redactions(words, ner, DenyList({}), policy(padding=0), 480, 640)
    # the title goes with the name after it (issue 13: "Dr" was left standing before a filled name)
    assert [(r.box, r.source, r.label) for r in out] == [(Box(10, 10, 160, 30), "ner", "PERSON")]
    assert ner.calls == ["Dr Maria Garcia .\n"]


def test_allow_listed_word_is_kept_even_when_ner_flags_it_but_not_when_it_is_a_header_value():
    ner = KeywordNer({"LEFT": "PERSON", "LAT": "PERSON"})
    words = [word("LEFT", 10, 10, 60, 30), word("LAT", 300, 10, 340, 30)]
    assert find_redactions(words, ner, DenyList({}), policy(), 480, 640) == []
    out = find_redactions(words, ner, header(PatientID="LAT"), policy(), 480, 640)
    assert [r.source for r in out] == ["header-match"] and out[0].box.x0 < 300 < out[0].box.x1


def test_all_text_mode_redacts_confident_words_except_allow_list():
    words = [word("ABDOMEN", 10, 10, 90, 30), word("R", 200, 10, 210, 30), word("zz", 300, 300, 320, 320, conf=5)]
    out = find_redactions(words, no_ner, DenyList({}), policy(all_text=True, padding=0), 480, 640)
    assert [(r.box, r.source) for r in out] == [(Box(10, 10, 90, 30), "all-text")]


def test_other_polarity_reading_does_not_split_a_redacted_name():
    words = [word("Saint", 104, 404, 178, 427), word("Anne", 188, 405, 264, 427),
             word("Conete)", 170, 400, 200, 430, conf=3), word("Hospital", 278, 404, 395, 433)]
    out = find_redactions(words, no_ner, header(InstitutionName="Saint Anne Hospital"), policy(padding=0),
                          480, 640)
    assert [r.box for r in out] == [Box(104, 404, 395, 433)]


def test_a_kept_word_between_two_matches_splits_the_box():
    words = [word("JOHN", 10, 10, 60, 30), word("kVp", 70, 10, 100, 30), word("SMITH", 110, 10, 170, 30)]
    out = find_redactions(words, no_ner, header(PatientName="SMITH^JOHN"), policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(10, 10, 60, 30), Box(110, 10, 170, 30)]


@pytest.mark.parametrize("x, y, height, year_width", [(10, 10, 20, 50), (100, 50, 14, 40)])
def test_date_read_as_several_words_is_matched_as_a_whole(x, y, height, year_width):
    """"04 / 03 / 1961" read as five words (punctuation included) is one date, at any size."""
    pieces = [("04", 0, 20), ("/", 22, 28), ("03", 30, 50), ("/", 52, 58), ("1961", 60, 60 + year_width)]
    words = [word(text, x + x0, y, x + x1, y + height) for text, x0, x1 in pieces]
    out = find_redactions(words, no_ner, header(PatientBirthDate="19610304"), policy(padding=0), 480, 640)
    assert [(r.box, r.label) for r in out] == [(Box(x, y, x + 60 + year_width, y + height), "date")]


def test_padding_is_clipped_to_the_image():
    words = [word("SMITH", 0, 0, 50, 12)]
    out = find_redactions(words, no_ner, header(PatientName="SMITH"), policy(padding=5), 40, 52)
    assert out[0].box == Box(0, 0, 52, 17)


def test_words_on_different_rows_are_not_one_line():
    lines = group_lines([word("A", 10, 10, 20, 30), word("B", 25, 100, 35, 120), word("C", 30, 12, 40, 30)])
    assert [[w.text for w in line] for line in lines] == [["A", "C"], ["B"]]


def test_statistical_ner_never_acts_on_low_confidence_garbage():
    """The confident words are analysed alone; the pass over every word keeps shape spans only."""
    ner = KeywordNer({"xyzzy": "PERSON"})
    out = find_redactions([word("Boston", 10, 10, 60, 30), word("xyzzy", 70, 10, 120, 30, conf=10)], ner,
                          DenyList({}), policy(), 480, 640)
    assert ner.calls == ["Boston .\n", "Boston xyzzy .\n"]
    assert out == []


def test_a_shape_read_at_confidence_zero_is_redacted():
    """Tesseract gives 0 to correct readings ("MRN-" "34615717"): a shape recogniser still finds them."""
    def ner(text):
        start = text.find("MRN-")
        return [Span(start, start + 12, "MEDICAL_RECORD_NUMBER", 0.9, "medical-record-number")] if start >= 0 else []
    out = find_redactions([word("MRN-", 10, 10, 50, 30, conf=0), word("34615717", 52, 10, 140, 30, conf=0)], ner,
                          DenyList({}), policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(10, 10, 140, 30)]


def test_a_letters_only_shape_read_wholly_unconfidently_is_noise():
    """Foliage on a photograph read "ms"@0 "EF"@19: a title and a capitalised word to the title recogniser.
    With no confident word in it and no digits, the span redacts nothing; an unconfident MRN does."""
    def ner(text):
        spans = []
        for needle, entity, name in (("ms EF", "PERSON", "person-title"), ("MRN-", "MEDICAL_RECORD_NUMBER",
                                                                            "medical-record-number")):
            start = text.find(needle)
            if start >= 0:
                spans.append(Span(start, start + (5 if needle == "ms EF" else 12), entity, 0.9, name))
        return spans
    words = [word("ms", 1031, 1481, 1060, 1500, conf=0), word("EF", 1066, 1481, 1090, 1500, conf=19),
             word("MRN-", 10, 10, 50, 30, conf=0), word("34615717", 52, 10, 140, 30, conf=0)]
    out = find_redactions(words, ner, DenyList({}), policy(padding=0), 1536, 2048)
    assert [r.box for r in out] == [Box(10, 10, 140, 30)]


def test_a_large_unconfident_line_among_small_text_is_still_read():
    """A 32 px e-mail address read at confidence 27 beside 8-10 px labels is a line of its own, not a plate
    edge spanning lines: its shape is found."""
    def ner(text):
        start = text.find("s.haddad@")
        return [Span(start, start + 28, "EMAIL_ADDRESS", 0.9, "email")] if start >= 0 else []
    words = [word("s.haddad@harrowgate-hosp.org", 13, 131, 418, 160, conf=27),
             word("120", 574, 139, 597, 150), word("kV", 601, 139, 620, 150), word("AP", 615, 109, 681, 118)]
    out = find_redactions(words, ner, DenyList({}), policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(13, 131, 418, 160)]


def test_pieces_ocr_broke_off_a_value_go_with_it():
    """ "OKO" (confident, three letters) beside "HARUTO" that the header matches, and "N"@67 beside "1981"
    that a shape finds: the pieces go too; "kVp" (allow-listed) and a word a line height away stay."""
    def ner(text):
        start = text.find("1981")
        return [Span(start, start + 4, "DATE_TIME", 0.9, "date")] if start >= 0 else []
    words = [word("OKO", 10, 10, 34, 20), word("HARUTO", 37, 10, 85, 20), word("kVp", 88, 10, 112, 20),
             word("N", 200, 50, 208, 60, conf=67), word("1981", 211, 50, 243, 60), word("Glenmore", 256, 50, 320, 60)]
    out = find_redactions(words, ner, header(PatientName="Okonkwo^Haruto"), policy(padding=0), 480, 640)
    assert sorted((r.box.x0, r.box.y0, r.box.x1, r.box.y1) for r in out) == [(10, 10, 85, 20), (200, 50, 243, 60)]


def test_the_view_that_read_the_ink_wins_over_the_one_that_read_its_gaps():
    """Light view: "Rosenthal"@13 "General"@89 "Hospital"@59; dark view of the same crop: "(EPSP"@33 ... .
    Word by word the dark view's "(EPSP" beat "Rosenthal" and split the name; compared crop against
    crop, the light view wins and the institution is found whole."""
    def light(text, x0, x1, conf):
        return OcrWord(text, Box(x0, 536, x1, 542), conf, (3, 0, 0, 0), 0, 0)

    def dark(text, x0, x1, conf):
        return OcrWord(text, Box(x0, 536, x1, 542), conf, (4, 0, 0, 0), 0, 1)
    words = [light("Rosenthal", 474, 509, 13), light("General", 512, 540, 89), light("Hospital", 543, 571, 59),
             dark("(EPSP", 476, 504, 33), dark("i", 510, 526, 30), dark("ea", 531, 544, 43), dark("ETE", 549, 570, 30)]

    def ner(text):
        start = text.find("Rosenthal General Hospital")
        return [Span(start, start + 26, "INSTITUTION", 0.85, "institution")] if start >= 0 else []
    out = find_redactions(words, ner, DenyList({}), policy(padding=0), 600, 800)
    assert [r.box for r in out] == [Box(474, 536, 571, 542)]


def test_a_title_and_the_name_after_it_share_the_line_band():
    """ "Dr. med." (redacted as a title, no descenders) and "Ingrid" (as a name, with its "g") are two boxes;
    both reach from the line's top to its lowest descender, so no strip of the string is left."""
    def ner(text):  # the title found by a shape, the name by the header: two reasons, two boxes
        start = text.find("Dr")
        return [Span(start, start + 7, "PERSON", 0.9, "person-title")] if start >= 0 else []
    words = [word("Dr.", 19, 933, 60, 959), word("med.", 70, 933, 117, 959), word("Ingrid", 128, 933, 200, 963),
             word("Brandt", 210, 933, 274, 959)]
    out = find_redactions(words, ner, header(ReferringPhysicianName="Brandt^Ingrid"), policy(padding=0), 1000, 800)
    assert {(r.box.y0, r.box.y1) for r in out} == {(933, 963)}
    assert min(r.box.x0 for r in out) == 19 and max(r.box.x1 for r in out) == 274


def test_a_label_colon_is_not_glued_to_the_value_it_touches():
    """ "SSN:" whose box touches its value: the analyzer must see "SSN: 511-39-8899", not "SSN511-39-8899"."""
    ner = KeywordNer({})
    find_redactions([word("SSN:", 70, 10, 113, 30, conf=96), word("511-39-8899", 112, 10, 212, 30)], ner,
                    DenyList({}), policy(), 480, 640)
    assert ner.calls == ["SSN 511-39-8899 .\n"]


def test_low_confidence_garbage_in_a_gap_does_not_split_the_box():
    words = [word("Imaging", 367, 203, 475, 229), word("mm", 479, 196, 492, 233, conf=0),
             word("Center", 495, 204, 588, 223)]
    out = find_redactions(words, no_ner, header(InstitutionName="Lakeside Imaging Center"), policy(padding=0),
                          480, 640)
    assert [r.box for r in out] == [Box(367, 203, 588, 229)]


def test_a_tall_unconfident_reading_spanning_lines_is_not_redacted_as_a_whole():
    words = [word("Linda", 148, 419, 180, 428), word("Johnson", 184, 419, 218, 428),
             word("J0HNSON", 146, 333, 333, 431, conf=4), word("PRONE", 225, 357, 325, 380)]
    out = find_redactions(words, no_ner, header(PatientName="Johnson^Linda"), policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(148, 419, 218, 428)]


def test_a_garbage_word_riding_on_a_joined_name_match_is_not_filled():
    # seed 41: "Linda Johnson." read right; a tall wrong-polarity reading "OE" (conf 46) next to it
    # made "LINDAJOHNSONOE", two edits from LINDAJOHNSON, and the whole run was filled
    words = [word("Linda", 149, 419, 176, 428), word("Johnson.", 185, 419, 218, 428, conf=61),
             word("OE", 225, 419, 330, 430, conf=46)]
    out = find_redactions(words, no_ner, header(ReferringPhysicianName="Johnson^Linda"), policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(149, 419, 218, 428)]


def test_an_unconfident_shadow_over_confident_words_does_not_split_their_line():
    # the other polarity's reading of "Springfield General" ("Sinise", conf 0) spans both words; it used to
    # start the line anew at "General", leaving the space before "Hospital" unfilled
    words = [word("Springfield", 229, 48, 316, 70), word("Sinise", 229, 48, 397, 68, conf=0),
             word("General", 323, 48, 388, 65), word("Hospital", 396, 48, 462, 70)]
    out = find_redactions(words, no_ner, header(InstitutionName="Springfield General Hospital"),
                          policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(229, 48, 462, 70)]


def test_a_tall_reading_below_the_tall_word_confidence_is_not_text():
    # NER tags garbage now and then; a 140 px "word" over 14 px lines read at conf 55 spans several lines
    words = [word("MILLER", 100, 100, 160, 114), word("JOHN", 170, 100, 210, 114), word("PA", 300, 100, 320, 114),
             word("OES", 90, 60, 330, 200, conf=55)]
    ner = KeywordNer({"OES": "PERSON"})  # 3 letters: spaCy-only words need 3 (issue 13)
    out = find_redactions(words, ner, header(PatientName="MILLER^JOHN"), policy(padding=0), 480, 640)
    assert [r.box for r in out] == [Box(100, 100, 210, 114)]
    words[-1] = word("OES", 90, 60, 330, 200, conf=80)  # as confident as real text: kept, and filled
    out = find_redactions(words, ner, header(PatientName="MILLER^JOHN"), policy(padding=0), 480, 640)
    assert Box(90, 60, 330, 200) in [r.box for r in out]


def test_a_comma_reaches_the_recognisers_only_after_a_family_name_in_capitals():
    """ "MOREAU," keeps it (FAMILY, Given); a title whose period OCR read as a comma ("Prof,") loses it, or the
    title-and-name shape no longer matches."""
    from icapdlp.pixels.detect import ner_token

    assert ner_token("MOREAU,") == "MOREAU,"
    assert ner_token("\u2018WHITCOMBE,") == "WHITCOMBE,"
    assert ner_token("Prof,") == "Prof"
    assert ner_token("Rafael,") == "Rafael"
    assert ner_token("1954,") == "1954"
