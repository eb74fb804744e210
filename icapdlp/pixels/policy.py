"""Which objects get OCR, and which get every word redacted."""

from __future__ import annotations

from pydicom.dataset import Dataset

from icapdlp.pixels.options import PixelOptions


def _listed(ds: Dataset, options: PixelOptions) -> bool:
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality and modality in {m.upper() for m in options.modalities}:
        return True
    if str(ds.get("SOPClassUID", "")) in set(options.sop_classes):
        return True
    image_type = ds.get("ImageType", [])
    values = [image_type] if isinstance(image_type, str) else list(image_type or [])
    wanted = {t.upper() for t in options.image_types}
    return any(str(v).strip().upper() in wanted for v in values)


def needs_ocr(ds: Dataset, options: PixelOptions) -> bool:
    """True when this object's pixels must be examined for burned-in text.

    Decided from header attributes only: the pipeline may ask with a dataset
    that stops before Pixel Data, so an image is anything with Rows and Columns.
    """
    return why_no_ocr(ds, options) is None


def why_no_ocr(ds: Dataset, options: PixelOptions) -> str | None:
    """Why the policy leaves this object's pixels unexamined (a PHI-free sentence), or None if it does not.

    The one decision behind :func:`needs_ocr`, worded for ``icapdlp inspect``.
    """
    if "PixelData" not in ds and not ("Rows" in ds and "Columns" in ds):
        return "the object holds no image"
    if options.ocr_when == "always":
        return None
    if options.ocr_when == "unless-burned-in-no":
        if str(ds.get("BurnedInAnnotation", "")).strip().upper() != "NO":
            return None
        return 'Burned In Annotation is NO and pixels.ocr_when = "unless-burned-in-no"'
    if _listed(ds, options):
        return None
    return 'neither its modality, SOP class nor image type is listed and pixels.ocr_when = "listed"'


def redact_all_text(ds: Dataset, options: PixelOptions) -> bool:
    """High-risk classes: every word found is redacted, not only PHI."""
    modality = str(ds.get("Modality", "")).strip().upper()
    return bool(modality) and modality in {m.upper() for m in options.redact_all_text_modalities}
