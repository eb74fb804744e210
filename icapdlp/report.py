"""What the pipeline did to one DICOM object, as counts only, and the closed sets it counts in.

Worker processes return a report with every result; the main process turns
reports into metrics and audit lines. Nothing here may hold a value from the
object: only counts, closed-set labels and durations. That is what keeps the
monitoring from becoming a PHI leak, and it is also how metrics from worker
processes reach the single registry without multiprocess collectors.

The vocabularies a report is keyed by (:class:`CdrFinding`, :class:`Stage`,
:class:`Container`) are enums here, on the ground floor beside
:class:`~icapdlp.verdict.BlockReason`: the code that finds a thing names it by
its member, and the metric label sets and audit fields derive from the enum
(``icapdlp.observability.labels``), so a new member is a new label with no
second list to keep in step.

:class:`ObjectReport` owns its field list: merging, emptiness and the fields
the audit line and the metrics read are all derived from
:func:`dataclasses.fields`, by each field's kind (:data:`COUNTERS`,
:data:`TIMINGS`, :data:`COUNTS`, :data:`FLAGS`, :data:`REFS`); a field of a new
kind fails at import.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field, fields


class CdrFinding(enum.StrEnum):
    """What the clean rebuild (CDR) found and removed; the value is the metric label and audit key."""

    #: the 128-byte preamble held an executable header (PE/ELF/Mach-O); zeroed
    PREAMBLE_EXECUTABLE = "preamble-executable"
    #: the preamble held other non-zero bytes; zeroed
    PREAMBLE_NONZERO = "preamble-nonzero"
    #: data followed the last data element (or the end of a deflated dataset); dropped
    TRAILING_BYTES = "trailing-bytes"
    #: only Data Set Trailing Padding (FFFC,FFFC) followed the last element; dropped
    TRAILING_PADDING = "trailing-padding"
    #: an element value broke its VR's rules (length, characters or multiplicity); removed
    LENGTH_INVALID = "length-invalid"
    #: overlay planes (60xx) were dropped (one per plane)
    OVERLAY_REMOVED = "overlay-removed"
    #: pixel values carried bits above High Bit (a hiding place); cleared
    PIXEL_HIGH_BITS = "pixel-high-bits"
    #: a standard-group tag the dictionary does not define (or only as retired); removed
    UNDEFINED_TAG = "undefined-tag"
    #: an attribute valid only inside sequence items sat at the top level; removed
    MISPLACED_ATTRIBUTE = "misplaced-attribute"
    #: a JPEG COM/APPn or JPEG 2000 COM segment in an encapsulated frame (one per segment); removed
    CODESTREAM_METADATA = "codestream-metadata"


class Stage(enum.StrEnum):
    """A timed pipeline stage (``ObjectReport.stage_seconds`` keys, the ``stage`` metric label)."""

    #: bounded pre-scan and pydicom parse of the scanned bytes
    PARSE = "parse"
    #: policy checks and header de-identification; pixel cleaning runs inside it, so its
    #: OCR, NER and pixel re-encoding time is in this stage too
    DEID = "deid"
    #: OCR of burned-in text (NER time excluded)
    OCR = "ocr"
    #: named-entity recognition on the OCR text
    NER = "ner"
    #: re-encoding cleaned pixels and writing the clean object
    ENCODE = "encode"


class Container(enum.StrEnum):
    """What a DICOM object was found in (the innermost container names it)."""

    RAW = "raw"  # the body (or a member, part or file) is the object itself
    FORM = "form"  # a multipart/form-data part
    STOW = "stow"  # a part of a DICOMweb multipart/related request (STOW-RS)
    WADO = "wado"  # a part of a DICOMweb multipart/related response (WADO-RS)
    JSON = "json"  # an application/dicom+json document
    ZIP = "zip"  # a zip archive member
    TAR = "tar"  # a tar archive member


#: prefix of a wrapping reached through a compression layer (gzip, deflate, br, zstd, bzip2
#: or xz; a Content-Encoding or a compressed file, at any depth): "compressed>raw" is a
#: gzip-encoded upload of one object
INFLATED = "compressed>"
#: the wrapping of a message that carried no DICOM at all
NO_WRAPPING = "none"


def wrapping(container: Container, inflated: bool) -> str:
    """The wrapping label of an object found in ``container`` (``inflated``: a compression was undone)."""
    return INFLATED + container.value if inflated else container.value


#: every wrapping label an object can be counted under
WRAPPINGS = (*(c.value for c in Container), *(INFLATED + c.value for c in Container))


@dataclass
class ObjectReport:
    """Counts for one de-identified DICOM object (or the totals of a message)."""

    #: action code (D, Z, X, K, C, U, ...) -> number of attributes it was applied to
    actions: Counter = field(default_factory=Counter)
    uids_replaced: int = 0
    #: :class:`CdrFinding` -> count
    cdr_findings: Counter = field(default_factory=Counter)
    #: redaction box source ("header-match", "ner", "all-text") -> boxes
    boxes_by_source: Counter = field(default_factory=Counter)
    frames_ocr: int = 0
    frames_skipped: int = 0
    pixels_cleaned: bool = False
    #: :class:`Stage` -> seconds
    stage_seconds: Counter = field(default_factory=Counter, metadata={"unit": "seconds"})
    #: keyed hashes (hex) of the original Study / SOP Instance UID, for tracing
    study_ref: str = ""
    instance_ref: str = ""

    def merge_into(self, total: "ObjectReport") -> None:
        """Add this report's counts to ``total`` (used for multi-object messages); refs are not merged."""
        for name in (*COUNTERS, *TIMINGS):
            getattr(total, name).update(getattr(self, name))
        for name in COUNTS:
            setattr(total, name, getattr(total, name) + getattr(self, name))
        for name in FLAGS:
            setattr(total, name, getattr(total, name) or getattr(self, name))

    def is_empty(self) -> bool:
        """Nothing counted: no counter, count or flag set (the refs do not count)."""
        return not any(getattr(self, name) for name in (*COUNTERS, *TIMINGS, *COUNTS, *FLAGS))


def _kind(f) -> str:
    if f.default_factory is Counter:
        return "timing" if f.metadata.get("unit") == "seconds" else "counter"
    return {int: "count", bool: "flag", str: "ref"}[type(f.default)]


_FIELDS = fields(ObjectReport)
#: closed-set label -> count fields, summed key by key (each has its metric and audit field)
COUNTERS = tuple(f.name for f in _FIELDS if _kind(f) == "counter")
#: closed-set label -> seconds fields, summed key by key (metrics only: durations are not audited)
TIMINGS = tuple(f.name for f in _FIELDS if _kind(f) == "timing")
#: integer count fields, summed
COUNTS = tuple(f.name for f in _FIELDS if _kind(f) == "count")
#: yes/no fields, or-ed
FLAGS = tuple(f.name for f in _FIELDS if _kind(f) == "flag")
#: keyed trace references of one object (collected per message, not merged)
REFS = tuple(f.name for f in _FIELDS if _kind(f) == "ref")
