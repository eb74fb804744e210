"""The policy's named recognisers: each finds its shapes, leaves non-PHI labels alone, and can be switched off."""

from __future__ import annotations

import pytest

from icapdlp.config import Settings
from icapdlp.config.loader import build
from icapdlp.errors import ConfigError
from icapdlp.pixels import recognizers
from icapdlp.pixels.detect import DetectionPolicy, Span, find_redactions
from icapdlp.pixels.denylist import DenyList
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord
from icapdlp.pixels.options import PixelOptions


def found(name: str, text: str) -> set[str]:
    """Text of every span the named recogniser (alone) finds in ``text``."""
    out = set()
    for r in recognizers.build((name,), ()):
        for res in r.analyze(text, r.supported_entities, None):
            out.add(text[res.start:res.end])
    return out


@pytest.mark.parametrize("name, text, expected", [
    ("person-title", "Dr S. Okonkwo", "Dr S. Okonkwo"),
    ("person-title", "Prof. Dr. K. Brandt", "Prof. Dr. K. Brandt"),
    ("person-title", "Dr. med. I. Duarte", "Dr. med. I. Duarte"),
    ("person-title", "Dott. Lucia Castellano", "Dott. Lucia Castellano"),
    ("person-title", "Dr A. van der Berg", "Dr A. van der Berg"),
    ("family-given-name", "MOREAU, Rafael", "MOREAU, Rafael"),
    ("family-given-name", "VAN DIJK, Mette", "VAN DIJK, Mette"),
    ("family-given-name", "DOE^JOHN", "DOE^JOHN"),
    ("date", "11-Apr-2023", "11-Apr-2023"),
    ("date", "14/03/1962", "14/03/1962"),
    ("date", "3 März 2021", "3 März 2021"),
    ("date", "12 juin 2020", "12 juin 2020"),
    ("date", "7 maart 2019", "7 maart 2019"),
    ("date", "2 dicembre 2018", "2 dicembre 2018"),
    ("date", "14 de octubre 2017", "octubre 2017"),
    ("date", "2023.04.11", "2023.04.11"),
    ("date", "13-An-1954", "13-An-1954"),  # 13-Jun-1954 with its month misread
    ("date", "22-tun-3883", "22-tun-3883"),  # 23-Jun-1981, month and year misread
    ("medical-record-number", "MRN-00583920", "MRN-00583920"),
    ("accession-number", "ACC: A2024-55123", "ACC: A2024-55123"),
    ("patient-id", "HX4417729", "HX4417729"),
    ("patient-id", "ID: 00482913", "ID: 00482913"),
    ("phone-number", "+44 113 496 0732", "+44 113 496 0732"),
    ("phone-number", "(555) 318-2270", "(555) 318-2270"),
    ("phone-number", "Tel +44 11", "+44 11"),
    ("phone-number", "699-5179", "699-5179"),
    ("email", "r.hughes@stmarys-hosp.org", "r.hughes@stmarys-hosp.org"),
    ("us-ssn", "SSN 427-38-2652", "427-38-2652"),
    ("institution", "Glenmore Royal Infirmary", "Glenmore Royal Infirmary"),
    ("institution", "Kliniek Zuiderpark", "Kliniek Zuiderpark"),
    ("institution", "Hôpital Saint-Roch", "Hôpital Saint-Roch"),
    ("institution", "St Aidan Medical Center", "St Aidan Medical Center"),
    ("institution", "Harrowgate Royal infirmary", "Harrowgate Royal infirmary"),  # OCR's small i (seed 4000)
    ("city", "Tampere", "Tampere"),
])
def test_recogniser_finds_its_shape(name, text, expected):
    assert expected in found(name, text)


@pytest.mark.parametrize("text", ["kVp 120", "mAs 250", "W 400 L 40", "DWI b1000", "1.25 mm", "5 cm", "Gain 52 dB",
                                  "Depth 16 cm", "PORTABLE", "AX T1 SE", "FR 32Hz", "DR", "120 kV",
                                  "BS, Aly", "SAG T2, Fat Sat"])
def test_labels_are_no_shape(text):
    hits = {n: found(n, text) for n in recognizers.FACTORIES}
    assert not any(hits.values()), hits


def test_every_recogniser_is_named_and_switchable():
    assert recognizers.RECOGNIZER_NAMES[0] == recognizers.SPACY
    assert set(recognizers.FACTORIES) <= recognizers.STRUCTURAL
    for name in recognizers.FACTORIES:
        built = recognizers.build((name,), ())
        assert built and all(r.name == name for r in built)
    with pytest.raises(ValueError, match="unknown recognizers"):
        PixelOptions(recognizers=("spacy-ner", "no-such"))


def test_policy_file_switches_recognisers_off():
    settings = build(Settings, {"pixels": {"recognizers": ["spacy-ner", "date"]}})
    assert settings.pixels.recognizers == ("spacy-ner", "date")
    with pytest.raises(ConfigError, match="no-such"):
        build(Settings, {"pixels": {"recognizers": ["no-such"]}})


def _word(text, x, conf=92.0):
    return OcrWord(text, Box(x, 10, x + 10 * len(text), 30), conf, (0, 0, 0, 0))


def _policy():
    return DetectionPolicy(frozenset({"DR", "ID"}), False, 30.0, 0.5, 0)


def test_shape_span_takes_its_allow_listed_title_along():
    words = [_word("Dr", 0), _word("Okonkwo", 40)]

    def ner(text):
        return [Span(text.index("Dr"), text.index("Okonkwo") + 7, "PERSON", 0.85, "person-title")]
    boxes = find_redactions(words, ner, DenyList({}), _policy(), 100, 200)
    assert [(r.box.x0, r.box.x1) for r in boxes] == [(0, 110)]


def test_noise_tagged_by_statistical_ner_alone_is_kept_out():
    """'Ilil' on a bone edge, and an unconfident word: spaCy's tag alone does not redact them."""
    words = [_word("Ilil", 0, 95.0), _word("Wesar", 100, 55.0), _word("Okonkwo", 200, 90.0)]

    def ner(text):
        return [Span(text.index(w), text.index(w) + len(w), "PERSON", 0.85, "spacy-ner")
                for w in ("Ilil", "Wesar", "Okonkwo")]
    boxes = find_redactions(words, ner, DenyList({}), _policy(), 100, 400)
    assert [r.box.x0 for r in boxes] == [200]


def test_shape_span_is_trusted_at_the_ocr_floor():
    words = [_word("14/03/1962", 0, 45.0)]

    def ner(text):
        return [Span(0, 10, "DATE_TIME", 0.8, "date")]
    assert len(find_redactions(words, ner, DenyList({}), _policy(), 100, 400)) == 1


def test_a_title_goes_with_the_name_after_it_but_stays_alone():
    """spaCy (or the header) finds "Moreau"; the allow-listed "Dr" before it goes too, "DR" alone stays."""
    words = [_word("Dr", 0), _word("Moreau", 40), _word("DR", 200)]

    def ner(text):
        start = text.index("Moreau")
        return [Span(start, start + 6, "PERSON", 0.85, "spacy-ner")]
    boxes = find_redactions(words, ner, DenyList({}), _policy(), 100, 400)
    assert [(r.box.x0, r.box.x1) for r in boxes] == [(0, 100)]


def test_a_statistical_span_over_unconfident_noise_is_dropped_even_where_one_word_is_confident():
    words = [_word("Ss", 0, 49.0), _word("ai", 30, 85.0), _word("jx", 60, 38.0)]

    def ner(text):
        return [Span(0, len(text.split(" .")[0]), "PERSON", 0.85, "spacy-ner")]
    assert find_redactions(words, ner, DenyList({}), _policy(), 100, 400) == []


def test_the_words_after_a_phi_label_go_whatever_ocr_read():
    """ "SSN:" read well, its value misread at confidence 0: the value goes, the next label stops it."""
    words = [_word("SSN:", 0, 94.0), _word("442-320-2834", 50, 0.0), _word("DR", 180, 95.0)]  # DR: allow-listed
    boxes = find_redactions(words, lambda text: [], DenyList({}), _policy(), 100, 400)
    assert [(r.box.x0, r.box.x1, r.label) for r in boxes] == [(50, 170, "LABELLED_VALUE")]


def test_noise_that_reads_like_a_short_label_or_place_redacts_nothing():
    """On a photograph: "ID" without its colon then garbage, "va" tagged LOCATION by spaCy (too short)."""
    words = [_word("ID", 0, 88.0), _word("Bas.", 30, 21.0), _word("va", 200, 80.0)]

    def ner(text):
        start = text.index("va")
        return [Span(start, start + 2, "LOCATION", 0.85, "spacy-ner")]
    assert find_redactions(words, ner, DenyList({}), _policy(), 100, 400) == []


def test_title_degree_and_initial_go_with_the_name():
    words = [_word("Dr.", 0), _word("med.", 40), _word("I.", 90), _word("Duarte", 120), _word("L", 300)]

    def ner(text):
        start = text.index("Duarte")
        return [Span(start, start + 6, "PERSON", 0.85, "spacy-ner")]
    boxes = find_redactions(words, ner, DenyList({}), _policy(), 100, 400)
    assert [(r.box.x0, r.box.x1) for r in boxes] == [(0, 180)]


def test_the_gap_between_neighbours_redacted_for_different_reasons_is_filled():
    """ "Dra." (title, PERSON) then "Castellano" (a header match): two boxes, no unfilled space between."""
    from icapdlp.pixels.denylist import build_deny_list
    from pydicom import Dataset

    ds = Dataset()
    ds.ReferringPhysicianName = "CASTELLANO^LUCIA"
    words = [_word("Dra.", 0), _word("Castellano", 60), _word("Lucia", 200)]

    def ner(text):
        return [Span(text.index("Dra"), text.index("Dra") + 3, "PERSON", 0.85, "spacy-ner")] if "Dra" in text else []
    boxes = sorted((r.box.x0, r.box.x1) for r in find_redactions(words, ner, build_deny_list(ds), _policy(), 100, 400))
    covered = set()
    for x0, x1 in boxes:
        covered |= set(range(x0, x1))
    assert covered >= set(range(0, 250))
