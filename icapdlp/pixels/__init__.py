"""Burned-in text: OCR, NER, header deny-list, redaction of stored pixel values.

``build_cleaner`` is cheap and safe as a worker-process initializer: the NER
model loads on first use (or in ``warm_up``), once per process.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.pixels import ocr
from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.ner import PresidioNer, model_installed
from icapdlp.pixels.options import PixelOptions

__all__ = ["BurnedInTextCleaner", "PixelSettings", "build_cleaner", "engine_status", "warm_up"]


class PixelSettings(Protocol):
    """The parts of the settings this package reads; ``icapdlp.config.Settings`` has them.

    A protocol rather than an import: the configuration sits above this package
    (it assembles :class:`PixelOptions` with the other layers' options), so
    this package names what it needs instead of importing it.
    """

    @property
    def pixels(self) -> PixelOptions: ...

    @property
    def dicom_limits(self) -> DicomLimits: ...

    @property
    def profile(self) -> ProfileOptions: ...

    def pixels_for(self, service: str | None) -> PixelOptions: ...


def build_cleaner(settings: PixelSettings, review_dir: str | None = None,
                  service: str | None = None) -> BurnedInTextCleaner:
    """The pixel cleaner for these settings, or for one service's pixel options (no model loaded yet)."""
    opts = settings.pixels_for(service)
    return BurnedInTextCleaner(
        opts,
        settings.dicom_limits,
        ner=PresidioNer(opts.ner_model, tuple(opts.ner_entities), tuple(opts.recognizers)),
        read_words=partial(ocr.read_words, engine=opts.ocr_engine, library=opts.tesseract_library),
        review_dir=review_dir if review_dir is not None else opts.review_dir,
        read_faint_words=partial(ocr.read_words, engine=opts.ocr_engine, library=opts.tesseract_library,
                                 faint=True),
    )


def warm_up(settings: PixelSettings) -> dict[str, bool]:
    """Load the NER model and start this process's Tesseract engine now (for readiness), not on first use.

    With the "library" engine this initialises the one Tesseract API object
    the worker keeps for every image; its failure is reported, not raised.
    """
    status = engine_status(settings)
    opts = settings.pixels
    status["tesseract"] = status["tesseract"] and ocr.warm_engine(opts.ocr_language, opts.ocr_engine,
                                                                  opts.tesseract_library)
    if status["ner_model"]:
        try:
            PresidioNer(opts.ner_model, tuple(opts.ner_entities), tuple(opts.recognizers)).load()
        except Exception:  # readiness reports, it does not crash the worker
            status["ner_model"] = False
    return status


def engine_status(settings: PixelSettings | None = None) -> dict[str, bool]:
    """For /readyz, cheaply: does the configured Tesseract engine load (library, or program on PATH),
    is the configured NER model package installed."""
    opts = settings.pixels if settings is not None else PixelOptions()
    return {"tesseract": ocr.tesseract_available(opts.ocr_engine, opts.tesseract_library),
            "ner_model": model_installed(opts.ner_model)}
