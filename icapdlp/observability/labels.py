"""The closed sets every metric label and audit field is drawn from.

A label value that is not listed here is never exported: :func:`closed` maps
it to ``"other"``. That keeps the series count bounded whatever a report
contains, and it means no value from a payload (a UID, a filename, a name)
can ever become a label, even if a caller passes one by mistake. Dashboards
see every series from the start because the metrics module pre-initialises
each value below (except "other", which only a bug upstream produces).

The report vocabularies are enums on the ground floor, named by the code
that finds or times them: CDR finding kinds (:class:`~icapdlp.report.CdrFinding`),
pipeline stages (:class:`~icapdlp.report.Stage`), containers
(:class:`~icapdlp.report.Container`, which the wrapping labels are made from)
and block reasons (:class:`~icapdlp.verdict.BlockReason`). The label sets
below are derived from them, so a new member is a new, pre-declared label
and there is no second list to forget. Every member is one real traffic
produces: ``tests/dicom/test_cdr_findings.py`` and
``tests/observability/test_label_coverage.py`` drive the real pipeline and
payload walker and fail on a member nobody emits (a dead series on every
dashboard).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from icapdlp import report
from icapdlp.report import CdrFinding, Stage
from icapdlp.verdict import BlockReason

#: what an unknown value from a report is counted as
OTHER = "other"

ICAP_METHODS = ("OPTIONS", "REQMOD", "RESPMOD", "OTHER")

#: how a transaction ended; also the verdict of the DICOM objects it carried
OUTCOMES = ("no-change", "rewritten", "blocked", "error")
OUTCOME_SET = frozenset(OUTCOMES)

#: final ICAP status codes the server sends; "other" is a transaction that ended
#: before any status was sent (the client went away), recorded with status 0
ICAP_STATUSES = (
    "200", "204", "206", "400", "404", "405", "408", "413",
    "500", "501", "503", "505", OTHER,
)

#: pipeline stages reported in ``ObjectReport.stage_seconds``
STAGES = (*(s.value for s in Stage), OTHER)

#: what was unwrapped to reach a DICOM object (``TransactionReport.objects_by_wrapping``
#: keys) and, for a transaction, its outermost DICOM-bearing wrapping: a
#: :class:`~icapdlp.report.Container`, "compressed>" first when a compression was undone
WRAPPINGS = (*report.WRAPPINGS, OTHER)
#: the outermost wrapping of a message that carried no DICOM at all
NO_WRAPPING = report.NO_WRAPPING

#: PS3.15 Table E.1-1 action codes as applied (``ObjectReport.actions`` keys): the
#: table's compound codes (Z/D, X/Z, X/D, X/Z/D, X/Z/U*) are resolved to one of
#: these before they are applied; "U*" is a kept sequence whose instance UIDs were replaced
ACTION_CODES = ("D", "Z", "X", "K", "C", "U", "U*", OTHER)

#: where a burned-in text redaction box came from (``ObjectReport.boxes_by_source`` keys)
BOX_SOURCES = ("header-match", "ner", "all-text", OTHER)

#: frames run through OCR versus skipped by policy
FRAME_HANDLING = ("ocr", "skipped")

#: direction of encapsulated body bytes
DIRECTIONS = ("in", "out")

BLOCK_REASONS = tuple(reason.value for reason in BlockReason)

#: what the clean rebuild (CDR) found and removed (``ObjectReport.cdr_findings`` keys)
CDR_FINDING_KINDS = (*(k.value for k in CdrFinding), OTHER)

#: the closed set each keyed ``ObjectReport`` field (``report.COUNTERS`` and ``report.TIMINGS``)
#: is folded onto; ``tests/observability/test_report_fields.py`` checks it covers every such field
REPORT_LABELS: dict[str, tuple[str, ...]] = {
    "actions": ACTION_CODES,
    "cdr_findings": CDR_FINDING_KINDS,
    "boxes_by_source": BOX_SOURCES,
    "stage_seconds": STAGES,
}

_SETS: dict[tuple[str, ...], dict[str, str]] = {}


def closed(value: object, allowed: tuple[str, ...]) -> str:
    """``value`` as a plain string if it is in ``allowed``, else ``"other"``.

    Only strings can match (an enum member of a ``StrEnum`` is one, and comes
    back as its plain value): a number or bytes that happens to print like an
    allowed value is still "other", so a caller's type error cannot smuggle
    anything through.
    """
    members = _SETS.get(allowed)
    if members is None:
        members = _SETS.setdefault(allowed, {v: v for v in allowed})
    if isinstance(value, str):
        return members.get(value, OTHER)
    return OTHER


def fold_counts(counts: Mapping[object, object] | None, allowed: tuple[str, ...]) -> dict[str, int]:
    """Fold a report's ``{label: count}`` onto the closed set (unknown keys add to "other").

    Counts that are not non-negative integers are ignored: they can only come
    from a bug, and a metric must never go backwards.
    """
    folded: dict[str, int] = {}
    if not counts:
        return folded
    for key, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            continue
        label = closed(key, allowed)
        folded[label] = folded.get(label, 0) + count
    return folded


def fold_seconds(seconds: Mapping[object, object] | None, allowed: tuple[str, ...]) -> dict[str, float]:
    """Like :func:`fold_counts` for per-stage durations (non-negative finite floats)."""
    folded: dict[str, float] = {}
    if not seconds:
        return folded
    for key, value in seconds.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not 0 <= value < float("inf"):
            continue
        label = closed(key, allowed)
        folded[label] = folded.get(label, 0.0) + float(value)
    return folded


def all_values(*sets: Iterable[str]) -> list[tuple[str, ...]]:
    """Every combination of the given sets (to pre-initialise multi-label metrics)."""
    combos: list[tuple[str, ...]] = [()]
    for values in sets:
        combos = [combo + (value,) for combo in combos for value in values]
    return combos
