"""Burned-in text: OCR, NER, header deny-list, redaction of stored pixel values.

``build_cleaner`` is cheap and safe as a worker-process initializer: the NER
model loads on first use (or in ``warm_up``), once per process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.ner import PresidioNer, model_installed
from icapdlp.pixels.ocr import tesseract_available

if TYPE_CHECKING:
    from icapdlp.config import Settings

__all__ = ["BurnedInTextCleaner", "build_cleaner", "engine_status", "warm_up"]


def build_cleaner(settings: "Settings", review_dir: str | None = None) -> BurnedInTextCleaner:
    """The process's pixel cleaner for these settings (no model loaded yet)."""
    opts = settings.pixels
    return BurnedInTextCleaner(
        opts,
        settings.dicom_limits.max_pixel_bytes,
        ner=PresidioNer(opts.ner_model, tuple(opts.ner_entities)),
        review_dir=review_dir if review_dir is not None else opts.review_dir,
        clean_graphics=settings.profile.clean_graphics,
    )


def warm_up(settings: "Settings") -> dict[str, bool]:
    """Load the NER model and check Tesseract now (for readiness), instead of on the first image."""
    status = engine_status(settings)
    if status["ner_model"]:
        try:
            PresidioNer(settings.pixels.ner_model, tuple(settings.pixels.ner_entities)).load()
        except Exception:  # readiness reports, it does not crash the worker
            status["ner_model"] = False
    return status


def engine_status(settings: "Settings | None" = None) -> dict[str, bool]:
    """For /readyz: is Tesseract on PATH, is the configured NER model package installed."""
    from icapdlp.pixels.options import PixelOptions

    model = settings.pixels.ner_model if settings is not None else PixelOptions().ner_model
    return {"tesseract": tesseract_available(), "ner_model": model_installed(model)}
