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


#: SOP classes whose pixels are computed values, never a rendered screen, so they cannot carry burned-in
#: text: they are not sent to OCR (and not blocked for lack of it). Each with the reason (README, pixels).
TEXT_FREE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose: a dose grid computed by the planning system",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation: binary or fractional label maps",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation: integer labels per voxel",
    "1.2.840.10008.5.1.4.1.1.66.8": "Height Map Segmentation: heights per pixel",
    "1.2.840.10008.5.1.4.1.1.30": "Parametric Map: computed real-world values per voxel",
}


def needs_ocr(ds: Dataset, options: PixelOptions) -> bool:
    """True when this object's pixels must be examined for burned-in text.

    Decided from header attributes only: the pipeline may ask with a dataset
    that stops before Pixel Data, so an image is anything with Rows and Columns.
    Classes in :data:`TEXT_FREE_CLASSES` never need it.
    """
    return why_no_ocr(ds, options) is None


def why_no_ocr(ds: Dataset, options: PixelOptions) -> str | None:
    """Why the policy leaves this object's pixels unexamined (a PHI-free sentence), or None if it does not.

    The one decision behind :func:`needs_ocr`, worded for ``icapdlp inspect``.
    """
    if "PixelData" not in ds and not ("Rows" in ds and "Columns" in ds):
        return "the object holds no image"
    text_free = TEXT_FREE_CLASSES.get(str(ds.get("SOPClassUID", "")).strip("\0 "))
    if text_free is not None:
        return f"its pixels cannot carry burned-in text ({text_free})"
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
    """High-risk classes (or a policy that says so): every word found is redacted, not only PHI."""
    if options.all_text:
        return True
    modality = str(ds.get("Modality", "")).strip().upper()
    return bool(modality) and modality in {m.upper() for m in options.redact_all_text_modalities}
