"""The contract between the header pipeline and burned-in text redaction.

Why a protocol here: the DICOM pipeline must not import OCR or NER (the CLI
and tests run without them), yet pixel cleaning has to run inside it, on the
ORIGINAL dataset, because the original header values are the deny-list that
finds names burned into the pixels. The pixels layer implements this protocol;
the pipeline calls it only when the profile's Clean Pixel Data option is on.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydicom import Dataset

from icapdlp.report import ObjectReport


@runtime_checkable
class PixelCleaner(Protocol):
    """Finds and redacts burned-in text; implemented by ``icapdlp.pixels``."""

    def needs_cleaning(self, ds: Dataset) -> bool:
        """Whether this object's pixels must be examined (modality, SOP class, policy).

        ``ds`` may lack Pixel Data (the ICAP 206 path passes only the header
        that precedes it); the answer must come from header attributes.
        """

    def clean(self, ds: Dataset, report: ObjectReport) -> None:
        """Redact burned-in text in place, before the header is de-identified.

        May replace PixelData and change the transfer syntax
        (``ds.file_meta.TransferSyntaxUID``), Photometric Interpretation,
        Planar Configuration and the Lossy Image Compression attributes.
        Sets ``report.pixels_cleaned`` when the pixels were actually cleaned,
        which is what allows the pipeline to set Burned In Annotation = NO.
        Raises :class:`icapdlp.verdict.Blocked` when cleaning is impossible.
        """


def frame_count(ds: Dataset) -> int:
    """Frames in an image object (1 when Number of Frames is absent or broken).

    Here because both sides of the contract count frames the same way: the
    pipeline for frames it reports skipped, the cleaner for the frames its
    policy leaves unexamined.
    """
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1
