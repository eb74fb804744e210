"""The recognisers the analyzer runs on OCR text: named, switchable policy entries.

A radiology overlay carries more than names and places: physicians with a
title (``Dr S. Okonkwo``), institutions (``... Royal Infirmary``, ``Kliniek
...``), dates in numeric forms and with month names in the major European
languages, record, accession and patient ID shapes, phone numbers, e-mail
addresses and national identifiers. spaCy's statistical NER misses most of
these on short OCR lines, so each shape has a recogniser of its own,
registered in presidio-analyzer's ``RecognizerRegistry`` beside the spaCy
recogniser: presidio's predefined recognisers where one fits and runs offline
(phone numbers through ``phonenumbers``, US SSN, UK NHS number and NINO), and
``PatternRecognizer`` entries for the rest.

``pixels.recognizers`` in the policy lists the names that run (all by
default); :data:`RECOGNIZER_NAMES` is the closed set. Building them imports
presidio, so the factories import lazily: the configuration can validate
names without loading presidio. Presidio's own ``EmailRecognizer`` is not
used: its validation calls tldextract, which fetches the public suffix list
at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: the spaCy recogniser (entities from ``pixels.ner_entities``)
SPACY = "spacy-ner"
#: spans found by these are a shape, not a guess: they are trusted at the OCR confidence floor,
#: where a spaCy-only span needs a confidently read, word-like token (see detect.NER_MIN_WORD_CONF)
STRUCTURAL = frozenset({"person-title", "family-given-name", "date", "medical-record-number", "accession-number",
                        "patient-id", "phone-number", "email", "us-ssn", "uk-nhs", "uk-nino", "institution", "city"})
LANGUAGE = "en"
#: score of a shape match for entity types spaCy also reports: above spaCy's 0.85, because presidio drops
#: a result contained in another of the same type with an equal or higher score, and the shape's result
#: must survive (it is trusted at the OCR floor, and it takes allow-listed titles along)
SHAPE_SCORE = 0.9

# month names and abbreviations: English, German, French, Dutch, Spanish, Italian, Portuguese, Swedish/Danish/
# Norwegian, Polish (nominative and genitive)
_MONTHS = (
    "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|"
    "september|october|november|december|"
    "januar|februar|märz|maerz|mär|mai|juni|juli|okt|oktober|dez|dezember|"
    "janv|janvier|févr|fevr|février|fevrier|mars|avr|avril|juin|juil|juillet|août|aout|sept|septembre|"
    "octobre|novembre|déc|décembre|decembre|"
    "januari|februari|maart|mrt|mei|augustus|"
    "ene|enero|febrero|marzo|abr|abril|mayo|junio|julio|ago|agosto|septiembre|setiembre|octubre|noviembre|"
    "dic|diciembre|"
    "gen|gennaio|febbraio|aprile|maggio|mag|giugno|giu|luglio|lug|settembre|set|ottobre|ott|dicembre|"
    "janeiro|fevereiro|março|marco|maio|junho|julho|setembro|outubro|novembro|dezembro|"
    "maj|augusti|okt|"
    "styczeń|stycznia|luty|lutego|marzec|marca|kwiecień|kwietnia|maja|czerwiec|czerwca|lipiec|lipca|"
    "sierpień|sierpnia|wrzesień|września|październik|października|listopad|listopada|grudzień|grudnia"
)
_MON = rf"(?:{_MONTHS})\.?"
_YEAR = r"(?:19|20)\d{2}"
_SEP = r"[./\-]"
_UPPER_WORD = r"[A-ZÀ-ÖØ-Þ][\w'’\-]+"
_NAME_TITLES = (r"Dr|Drs|Dra|Dres|Prof|Pr|Dott|Dottssa|Doz|PD|Mr|Mrs|Ms|Mme|Mlle|Herr|Frau|Hr|Fr|Sr|Sra|"
                r"Dhr|Mevr|Mw|Dipl|Ing|MUDr|Lic")
#: the same titles, normalised as the detector compares words (upper case, letters only)
TITLES = frozenset(t.upper() for t in _NAME_TITLES.split("|"))
_INSTITUTION_TAILS = (r"Medical\s+Cent(?:er|re)|Royal\s+Infirmary|Infirmary|(?:General\s+|University\s+|"
                      r"Children'?s\s+|Memorial\s+|District\s+|County\s+)?Hospital|Clinic|Health\s+Cent(?:er|re)|"
                      r"Imaging\s+Cent(?:er|re)|Radiology|Ziekenhuis|Krankenhaus|Klinikum|Universitätsklinikum|"
                      r"Sjukhus|Sygehus|Sykehus|Spital|Kliniek|Klinik|Hospices?")
_INSTITUTION_HEADS = (r"Kliniek|Klinik|Klinikum|H[ôoó6éeè0]pital|Hospital|Ospedale|Clinica|Clínica|Clinique|"
                      r"Centre\s+Hospitalier|Ziekenhuis|Policlinico|Hospices?|Szpital|Sjukhuset|Universitätsklinikum|"
                      r"Krankenhaus|Spital|CHU|AZ|UZ")
_PARTICLES = (r"(?:(?:de|du|la|le|des|del|della|di|da|do|dos|San|Santa|Santo|Saint|Sainte|St\.?|Ste\.?|of|the|"
              r"am|an|der|den|van|von)\s+)*")


def _pattern(name: str, entity: str, patterns: list[tuple[str, str, float]], case_sensitive: bool = False) -> Any:
    import re

    from presidio_analyzer import Pattern, PatternRecognizer

    flags = re.DOTALL | re.MULTILINE | (0 if case_sensitive else re.IGNORECASE)
    return PatternRecognizer(supported_entity=entity, name=name, supported_language=LANGUAGE,
                             patterns=[Pattern(n, regex, score) for n, regex, score in patterns],
                             global_regex_flags=flags)


def _person_title() -> Any:
    # the title case-insensitive, the name capitalised (or all capitals): "Dr S. Okonkwo", "Prof. Dr. K. Brandt",
    # "Dr. med. I. Duarte", "Dott. Lucia Castellano", "DR OKONKWO"
    title = rf"(?i:\b(?:{_NAME_TITLES}))\.?"
    degrees = r"(?:\s+(?i:med|Dr|rer\.?\s?nat|h\.?\s?c|phil)\.?)*"
    initials = r"(?:\s*[A-Z]\.?(?:-?[A-Z]\.)?(?=\s))*"  # "S.", "J" (OCR drops dots), "J.-P."
    name = rf"\s+{initials}\s*{_PARTICLES}{_UPPER_WORD}(?:[\s\-]+{_PARTICLES}{_UPPER_WORD})?"
    return _pattern("person-title", "PERSON", [("title and name", title + degrees + name, SHAPE_SCORE)],
                    case_sensitive=True)


def _family_given_name() -> Any:
    # how viewers and modalities print the Patient's Name attribute: the family name in capitals, a comma and
    # the given name ("MOREAU, Rafael", "VAN DIJK, Mette"), or the stored form with its caret ("DOE^JOHN").
    # Case-sensitive: a label line in capitals ("PORTABLE", "SAG T2 FSE") has no comma before a given name
    # three letters or more each: foliage on a photograph read "BS, Aly"
    caps = r"[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'’\-]{2,}"
    given = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ][\w'’\-]+"
    return _pattern("family-given-name", "PERSON", [
        ("FAMILY, Given", rf"(?<!\w){caps}(?:\s{caps})?,\s*{given}(?:[\s\-]{given})?", SHAPE_SCORE),
        ("FAMILY^GIVEN", rf"(?<!\w){caps}\^{caps}(?:\^{caps})*", SHAPE_SCORE),
    ], case_sensitive=True)


def _date() -> Any:
    return _pattern("date", "DATE_TIME", [
        ("day month-name year",
         rf"\b\d{{1,2}}(?:st|nd|rd|th|er|\.)?[\s\-/.]*{_MON}[\s\-/.,]*(?:{_YEAR}|'?\d{{2}})\b", SHAPE_SCORE),
        ("month-name day year", rf"\b{_MON}[\s\-/.]+\d{{1,2}}(?:st|nd|rd|th)?,?[\s\-/.]+{_YEAR}\b", SHAPE_SCORE),
        ("month-name year", rf"\b{_MON}[\s\-/.,]+{_YEAR}\b", 0.7),
        ("d/m/y numeric", rf"\b\d{{1,2}}{_SEP}\d{{1,2}}{_SEP}(?:{_YEAR}|\d{{2}})\b", SHAPE_SCORE),
        ("y/m/d numeric", rf"\b{_YEAR}{_SEP}\d{{1,2}}{_SEP}\d{{1,2}}\b", SHAPE_SCORE),
        ("yyyymmdd", r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b", 0.6),
        # a date's layout with OCR's digit confusions (0/6/8, 1/7): "66.87.2618" is 06.07.2018; two digits,
        # two digits, four digits with one repeated separator is a date on an overlay whatever the digits
        ("dd.mm.yyyy layout", r"\b\d{2}([./\-])\d{2}\1\d{4}\b", SHAPE_SCORE),
        ("yyyy.mm.dd layout", r"\b\d{4}([./\-])\d{2}\1\d{2}\b", SHAPE_SCORE),
        # the same for a month name OCR misread ("13-An-1954" for 13-Jun-1954, "22-tun-3883" for 23-Jun-1981):
        # a day, two to four letters and four digits, joined by one repeated separator
        ("dd-mon-yyyy layout", r"\b\d{1,2}([./\-])[^\W\d_]{2,4}\1\d{4}\b", SHAPE_SCORE),
    ])


_ID_VALUE = r"[A-Z0-9][A-Z0-9\-/.]{3,}\d[A-Z0-9]*"


def _mrn() -> Any:
    return _pattern("medical-record-number", "MEDICAL_RECORD_NUMBER", [
        ("labelled MRN", rf"\b(?:MRN|MR#|MR\s?No|MR\s?Nr|Med\.?\s?Rec(?:ord)?\.?(?:\s?No)?|Chart|Dossier|EPD|NHI)"
                         rf"\.?\s*[:#\-]*\s*{_ID_VALUE}", 0.9),
    ])


def _accession() -> Any:
    return _pattern("accession-number", "ACCESSION_NUMBER", [
        ("labelled accession", rf"\b(?:ACC|Acc\.?\s?No|Acc#|Accession(?:\s?(?:No|Number))?|Auftrag|Order)\.?"
                               rf"\s*[:#\-]?\s*{_ID_VALUE}", 0.9),
    ])


def _patient_id() -> Any:
    return _pattern("patient-id", "PATIENT_ID", [
        ("labelled id", rf"\b(?:PID|Pat\.?\s?ID|Patient\s?ID|Pt\.?\s?ID|ID|Case|Study\s?ID|Pat\.?\s?Nr|Nr)\.?"
                        rf"\s*[:#\-]?\s*{_ID_VALUE}", 0.85),
        ("letters and digits", r"\b[A-Z]{1,3}\d{5,12}(?:-\d{1,4})?\b", 0.7),
        ("letters, digits, digits", r"\b[A-Z]{1,3}\d{2,8}[\-/]\d{3,8}\b", 0.7),
        ("long digit run", r"\b\d{6,12}\b", 0.6),
        ("grouped digits", r"\b\d{3,4}[\s\-]\d{3,4}[\s\-]\d{3,4}\b", 0.55),
    ], case_sensitive=True)


def _email() -> Any:
    return _pattern("email", "EMAIL_ADDRESS", [
        ("address", r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b", 0.9),
    ])


def _institution() -> Any:
    words = r"(?:[^\W\d_][\w'’\-]+\s+){1,4}"  # any case: OCR reads "westerkade Clinic"
    return _pattern("institution", "INSTITUTION", [
        # the kind word in any case too: OCR reads a capital I as a small one ("Royal infirmary")
        ("name then kind", rf"\b{words}(?i:{_INSTITUTION_TAILS})\b", 0.85),
        ("kind then name", rf"(?<!\w)(?:{_INSTITUTION_HEADS})\s+{_PARTICLES}{_UPPER_WORD}"
                           rf"(?:[\s\-]+{_PARTICLES}{_UPPER_WORD}){{0,3}}", 0.85),
    ], case_sensitive=True)


#: cities a European or North American overlay names most often; spaCy's small model misses a lone city
#: name on its own OCR line ("Porto", "Tampere") or calls it a person. Countries' capitals and large cities,
#: and cities with large university hospitals.
CITIES = (
    "Aberdeen Amsterdam Antwerp Arnhem Athens Barcelona Basel Belfast Bergen Berlin Bern Bilbao Birmingham "
    "Bologna Bordeaux Bratislava Bremen Brighton Bristol Brno Brussels Bucharest Budapest Cambridge Cardiff "
    "Coimbra Cologne Copenhagen Cork Coventry Debrecen Delft Dortmund Dresden Dublin Dundee Dusseldorf "
    "Düsseldorf Edinburgh Eindhoven Erlangen Espoo Essen Exeter Florence Frankfurt Freiburg Galway Gdansk "
    "Gdańsk Geneva Genoa Ghent Glasgow Gothenburg Granada Graz Groningen Haarlem Hamburg Hannover Hanover "
    "Heidelberg Helsinki Innsbruck Kiel Krakow Kraków Lausanne Leeds Leicester Leiden Leipzig Leuven Liege "
    "Liège Lille Limerick Linz Lisbon Liverpool Ljubljana Lodz Łódź London Lund Luxembourg Lyon Maastricht "
    "Madrid Mainz Malaga Málaga Malmo Malmö Manchester Mannheim Marseille Milan Montpellier Munich München "
    "Munster Münster Nantes Naples Newcastle Nice Nijmegen Nottingham Odense Oslo Oulu Oxford Padua Palermo "
    "Paris Plymouth Porto Poznan Poznań Prague Reykjavik Riga Rome Rotterdam Salzburg Seville Sheffield Sofia "
    "Southampton Stockholm Strasbourg Stuttgart Tallinn Tampere Thessaloniki Toulouse Trondheim Tubingen "
    "Tübingen Turin Turku Ulm Uppsala Utrecht Valencia Vienna Vilnius Warsaw Wroclaw Wrocław Zagreb Zaragoza "
    "Zurich Zürich "
    "Atlanta Austin Baltimore Boston Calgary Charlotte Chicago Cincinnati Cleveland Columbus Dallas Denver "
    "Detroit Edmonton Halifax Houston Indianapolis Jacksonville Memphis Miami Milwaukee Minneapolis Montreal "
    "Montréal Nashville Omaha Ottawa Philadelphia Phoenix Pittsburgh Portland Quebec Rochester Sacramento "
    "Seattle Toronto Tucson Vancouver Winnipeg"
).split()


def _city() -> Any:
    from presidio_analyzer import PatternRecognizer

    return PatternRecognizer(supported_entity="LOCATION", name="city", supported_language=LANGUAGE,
                             deny_list=list(CITIES), deny_list_score=SHAPE_SCORE)


#: regions whose numbering plans presidio's phone recogniser tries. phonenumbers scans the text once per
#: region (about 30 ms per region on a frame's worth of OCR noise), so only the largest plans; any
#: number written "+CC ...", "(area) ..." or as 9+ grouped digits is found by the shape patterns anyway
PHONE_REGIONS = ("US", "GB", "DE", "FR")


def _phone() -> list[Any]:
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class OverlayPhoneRecognizer(PhoneRecognizer):
        """Presidio's phone recogniser, trusted on its own: an overlay rarely says "phone" beside it."""

        SCORE = 0.7

    # presidio's validated numbers, plus the written shape of a number whatever its range (fictional and new
    # ranges such as 555 are still someone's number): a "+" or "(area)" start, or 9+ digits in groups.
    # Leniency 0 would take any run of digits ("120" kV) for a number.
    start = r"(?<![\w\-/.])"
    groups = r"\d{2,5}(?:[\s.\-]\d{2,5}){1,4}(?![\w\-/])"
    shapes = _pattern("phone-number", "PHONE_NUMBER", [
        ("international", rf"{start}\+\d{{1,3}}[\s.\-]?(?:\(0\)\s?)?{groups}", 0.8),
        ("area code", rf"{start}\(\d{{2,5}}\)[\s.\-]?{groups}", 0.8),
        # what is left when OCR lost groups: "+44 11", "699-5179"
        ("country code and a group", rf"{start}\+\d{{1,3}}[\s.\-]\d{{2,5}}(?![\w\-/])", 0.6),
        ("local number", rf"{start}\d{{3}}-\d{{4}}(?![\w\-/])", 0.6),
        ("nine digits in groups", rf"{start}(?=(?:[\s.\-]?\d){{9,15}}(?![\w\-/]))(?:\d{{2,5}}[\s.\-]){{1,4}}\d{{2,5}}"
                                  rf"(?![\w\-/])", 0.6),
    ])
    return [OverlayPhoneRecognizer(supported_language=LANGUAGE, supported_regions=PHONE_REGIONS, leniency=1,
                                   context=["phone", "tel", "ph", "fax", "telephone", "mobile"], name="phone-number"),
            shapes]


def _predefined(class_name: str, name: str) -> Callable[[], Any]:
    def build() -> Any:
        from presidio_analyzer import predefined_recognizers

        recognizer = getattr(predefined_recognizers, class_name)(supported_language=LANGUAGE)
        recognizer.name = name
        return recognizer
    return build


#: name -> factory of one recogniser or a list of them; the order is the documentation's
FACTORIES: dict[str, Callable[[], Any]] = {
    "person-title": _person_title,
    "family-given-name": _family_given_name,
    "date": _date,
    "medical-record-number": _mrn,
    "accession-number": _accession,
    "patient-id": _patient_id,
    "phone-number": _phone,
    "email": _email,
    "us-ssn": _predefined("UsSsnRecognizer", "us-ssn"),
    "uk-nhs": _predefined("NhsRecognizer", "uk-nhs"),
    "uk-nino": _predefined("UkNinoRecognizer", "uk-nino"),
    "institution": _institution,
    "city": _city,
}
RECOGNIZER_NAMES: tuple[str, ...] = (SPACY, *FACTORIES)


def build(names: tuple[str, ...], spacy_entities: tuple[str, ...]) -> list[Any]:
    """The recogniser objects for the enabled ``names`` (the spaCy one on ``spacy_entities``)."""
    unknown = set(names) - set(RECOGNIZER_NAMES)
    if unknown:
        raise ValueError(f"unknown recognisers: {sorted(unknown)}")
    out = []
    for name in names:
        if name == SPACY:
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            out.append(SpacyRecognizer(supported_language=LANGUAGE, supported_entities=list(spacy_entities)))
            out[-1].name = SPACY
        else:
            made = FACTORIES[name]()
            out.extend(made if isinstance(made, list) else [made])
    return out


def entities(recognizers: list[Any]) -> list[str]:
    """Every entity type the given recognisers report (what the analyzer is asked for)."""
    return sorted({e for r in recognizers for e in r.supported_entities})
