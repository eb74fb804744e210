"""What the pipeline did to one DICOM object, as counts only.

Worker processes return a report with every result; the main process turns
reports into metrics and audit lines. Nothing here may hold a value from the
object: only counts, closed-set labels and durations. That is what keeps the
monitoring from becoming a PHI leak, and it is also how metrics from worker
processes reach the single registry without multiprocess collectors.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields


@dataclass
class ObjectReport:
    """Counts for one de-identified DICOM object."""

    #: action code (D, Z, X, K, C, U, ...) -> number of attributes it was applied to
    actions: Counter = field(default_factory=Counter)
    uids_replaced: int = 0
    #: CDR finding kind (e.g. "preamble-executable", "trailing-bytes") -> count
    cdr_findings: Counter = field(default_factory=Counter)
    #: redaction box source ("header-match", "ner", "all-text") -> boxes
    boxes_by_source: Counter = field(default_factory=Counter)
    frames_ocr: int = 0
    frames_skipped: int = 0
    pixels_cleaned: bool = False
    #: pipeline stage ("parse", "deid", "ocr", "ner", "encode") -> seconds
    stage_seconds: Counter = field(default_factory=Counter)
    #: keyed hashes (hex) of the original Study / SOP Instance UID, for tracing
    study_ref: str = ""
    instance_ref: str = ""

    def merge_into(self, total: "ObjectReport") -> None:
        """Add this report's counts to ``total`` (used for multi-object messages).

        Driven by the field list above, so a new count is merged without a
        second list to keep in step: counters and integers add up, flags are
        or-ed, and the per-object trace refs (strings) stay per object.
        """
        for name in _FIELDS:
            mine = getattr(self, name)
            if isinstance(mine, Counter):
                getattr(total, name).update(mine)
            elif isinstance(mine, bool):
                setattr(total, name, getattr(total, name) or mine)
            elif isinstance(mine, int):
                setattr(total, name, getattr(total, name) + mine)

    def counts_anything(self) -> bool:
        """Whether any count (a counter or an integer; not a flag or a trace ref) is non-zero."""
        return any(isinstance(value, (Counter, int)) and not isinstance(value, bool) and value
                   for value in (getattr(self, name) for name in _FIELDS))


_FIELDS = tuple(f.name for f in fields(ObjectReport))
