"""The pixel cleaner the DICOM pipeline calls: decode, OCR, decide, fill, write back.

One instance per worker process. It is called with the ORIGINAL dataset, before
header de-identification, because the header values are the deny-list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from icapdlp.dicom.options import DicomLimits
from icapdlp.dicom.pixel_hook import frame_count
from icapdlp.pixels import contrast
from icapdlp.pixels import frames as frames_mod
from icapdlp.pixels import ocr
from icapdlp.pixels.denylist import build_deny_list, normalize
from icapdlp.pixels.detect import DetectionPolicy, NerFunction, Span, find_redactions
from icapdlp.pixels.encode import write_back
from icapdlp.pixels.geometry import Redaction
from icapdlp.pixels.options import PixelOptions
from icapdlp.pixels.policy import needs_ocr, redact_all_text
from icapdlp.pixels.redact import fill_boxes, fill_value
from icapdlp.report import ObjectReport, Stage
from icapdlp.verdict import Blocked, BlockReason

WordReader = Callable[[np.ndarray, str], list[ocr.OcrWord]]


@dataclass
class CleanResult:
    """What one clean() did, per distinct frame, for tests, review and benchmarks."""

    redactions: dict[int, list[Redaction]] = field(default_factory=dict)  # frame index -> boxes
    originals: dict[int, np.ndarray] = field(default_factory=dict)  # first frame of each kind, for review
    photometric: str = ""


class BurnedInTextCleaner:
    """Implements the pipeline's ``PixelCleaner`` protocol (needs_cleaning / clean)."""

    def __init__(self, options: PixelOptions, limits: DicomLimits | int, *, ner: NerFunction,
                 read_words: WordReader | None = None, review_dir: str | None = None,
                 read_faint_words: WordReader | None = None) -> None:
        self.options = options
        #: the decode budget (dicom/pixel_cost.py); an int is max_pixel_bytes with default ratio limits
        self.limits = DicomLimits(max_pixel_bytes=limits) if isinstance(limits, int) else limits
        self.ner = ner
        self.read_words = read_words or ocr.read_words
        #: reads the stretched view of deep frames (contrast.local_view); the same reader unless given one
        #: that skips a view whose candidates are texture (build_cleaner does: ocr.read_words, faint=True)
        self.read_faint_words = read_faint_words
        self.review_dir = review_dir
        self.allow = frozenset(normalize(w) for w in options.allow_words)
        self.last_result: CleanResult | None = None
        #: the file being cleaned, when the caller has one (anonymize): review images are named after it
        self.review_source: str | None = None

    def needs_cleaning(self, ds: Dataset) -> bool:
        return needs_ocr(ds, self.options)

    def skipped_frames(self, ds: Dataset) -> int:
        """Frames the policy leaves unexamined (the pipeline adds them to frames_skipped)."""
        return 0 if "PixelData" not in ds or self.needs_cleaning(ds) else frame_count(ds)

    def clean(self, ds: Dataset, report: ObjectReport) -> None:
        """Redact burned-in PHI in every frame of ``ds`` in place; Blocked when that is impossible."""
        try:
            self._clean(ds, report)
        except Blocked:
            raise
        except ocr.OcrUnavailable:
            raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, "OCR failed or Tesseract missing") from None
        except LookupError:
            raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, "NER model unavailable") from None
        except MemoryError:  # the worker's memory cap was reached: a resource limit
            raise Blocked(BlockReason.LIMIT_EXCEEDED, "pixel cleaning ran out of memory") from None
        except Exception as exc:  # fail closed, with no value from the object in the message
            raise Blocked(BlockReason.PIXEL_CLEANING_IMPOSSIBLE, f"pixel cleaning failed ({type(exc).__name__})") \
                from None

    def _timed_ner(self, report: ObjectReport) -> NerFunction:
        def timed(function: NerFunction) -> NerFunction:
            def run(text: str) -> list[Span]:
                t0 = time.perf_counter()
                try:
                    return function(text)
                finally:
                    report.stage_seconds[Stage.NER] += time.perf_counter() - t0
            return run
        run = timed(self.ner)
        shapes = getattr(self.ner, "shapes", None)
        if shapes is not None:
            run.shapes = timed(shapes)  # type: ignore[attr-defined]
        return run

    def _clean(self, ds: Dataset, report: ObjectReport) -> None:
        deny = build_deny_list(ds)
        decoded = frames_mod.decode(ds, self.limits)
        arr = decoded.frames
        rows, cols = arr.shape[1], arr.shape[2]
        policy = DetectionPolicy(self.allow, redact_all_text(ds, self.options), self.options.ocr_min_confidence,
                                 self.options.ner_min_score, self.options.box_padding)
        ner = self._timed_ner(report)
        result = CleanResult(photometric=decoded.photometric)
        by_digest: dict[bytes, list[Redaction]] = {}
        for i in range(arr.shape[0]):
            digest = frames_mod.frame_digest(arr[i])
            if digest not in by_digest:
                t0 = time.perf_counter()
                grey = frames_mod.grey8(arr[i], decoded.photometric, ds)
                words = self.read_words(grey, self.options.ocr_language)
                stretched = contrast.local_view(arr[i], decoded.photometric)
                if stretched is not None:  # faint text on deep data: read again where the view differs
                    words += (self.read_faint_words or self.read_words)(stretched, self.options.ocr_language)
                ner_before = report.stage_seconds[Stage.NER]
                by_digest[digest] = find_redactions(words, ner, deny, policy, rows, cols)
                ner_seconds = report.stage_seconds[Stage.NER] - ner_before
                report.stage_seconds[Stage.OCR] += time.perf_counter() - t0 - ner_seconds
                report.frames_ocr += 1
                if by_digest[digest] and self.review_dir:
                    result.originals[i] = arr[i].copy()
            result.redactions[i] = by_digest[digest]
        t0 = time.perf_counter()
        if any(result.redactions.values()):
            value = fill_value(arr, decoded.photometric, ds)
            for i, boxes in result.redactions.items():
                fill_boxes(arr[i], (r.box for r in boxes), value)
            for boxes in by_digest.values():
                for r in boxes:
                    report.boxes_by_source[r.source] += 1
            write_back(ds, decoded)
        elif not decoded.encapsulated:
            write_back(ds, decoded)  # native: cheap; the rebuild then zeroes bits above High Bit
        report.stage_seconds[Stage.ENCODE] += time.perf_counter() - t0
        report.pixels_cleaned = True
        self.last_result = result
        if self.review_dir and result.originals:
            from icapdlp.pixels.review import write_review

            write_review(self.review_dir, ds, result, arr, self.review_source)
