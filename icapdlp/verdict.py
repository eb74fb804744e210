"""Block reasons and the exception that carries them.

Every failure path in icapdlp ends in an explicit verdict with a reason from
this closed set. The same string is the metric label, the audit-log field and
the text on the block page, so operators can follow one request from the
dashboard to the log to what the user saw. Details attached to a block must
never contain patient data: they are written for operators and may be logged.
"""

from __future__ import annotations

import enum


class BlockReason(str, enum.Enum):
    """Why a message was refused. Values are stable: they appear in metrics and logs."""

    UNPARSEABLE_DICOM = "unparseable-dicom"
    LIMIT_EXCEEDED = "limit-exceeded"
    UNSUPPORTED_ENCODING = "unsupported-encoding"
    PIXEL_CLEANING_IMPOSSIBLE = "pixel-cleaning-impossible"
    ENCRYPTED_ARCHIVE = "encrypted-archive"
    UNSAFE_ARCHIVE = "unsafe-archive"
    UNCHECKABLE_BULK_DATA = "uncheckable-bulk-data"
    ENCAPSULATED_DOCUMENT = "encapsulated-document"
    POLICY_BLOCKS_DICOM = "policy-blocks-dicom"
    DEADLINE_EXCEEDED = "deadline-exceeded"
    WORKER_CRASHED = "worker-crashed"
    SPOOL_FAILED = "spool-failed"
    INTERNAL_ERROR = "internal-error"
    #: bytes the server cannot account for: a format, compression or encoding it cannot undo,
    #: a container it cannot fully parse, or framing two real parsers would read differently
    UNINSPECTABLE = "uninspectable"
    #: a DICOMDIR (media directory): it lists every patient on the medium and is not rebuilt
    DICOMDIR = "dicomdir"
    #: an image object whose Pixel Data is missing, so its images cannot be checked
    MISSING_PIXEL_DATA = "missing-pixel-data"

    def __str__(self) -> str:  # so f-strings print the wire value
        return self.value


class Blocked(Exception):
    """Raised anywhere below the server to refuse a message.

    ``detail`` is a short, PHI-free explanation for operators (for example
    "element length 4294967295 exceeds remaining 812 bytes"); it never quotes
    values from the payload.
    """

    def __init__(self, reason: BlockReason, detail: str = "", wrapping: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        #: the wrapping label of what was being walked when the block came (metrics and audit only)
        self.wrapping = wrapping

    def __reduce__(self):  # keep the type intact across process boundaries
        return (Blocked, (self.reason, self.detail, self.wrapping))
