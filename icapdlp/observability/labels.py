"""The closed sets every metric label and audit field is drawn from.

A label value that is not listed here is never exported: :func:`closed` maps
it to ``"other"``. That keeps the series count bounded whatever a report
contains, and it means no value from a payload (a UID, a filename, a name)
can ever become a label, even if a caller passes one by mistake. Dashboards
see every series from the start because the metrics module pre-initialises
each value below (except "other", which only a bug upstream produces).

Every value listed is one that real traffic produces:
``tests/observability/test_label_coverage.py`` drives the real pipeline and
the real payload walker and fails on a value nobody emits (a dead series on
every dashboard) as well as on an emitted value missing here (which would
silently land in "other").

The CDR finding kinds are the vocabulary the DICOM layer emits in
``ObjectReport.cdr_findings``; defining them here, once, lets the metric,
the audit line and the dashboard agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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

#: pipeline stages reported in ``ObjectReport.stage_seconds`` (parse, de-identify,
#: OCR and NER of burned-in text, encode the clean object)
STAGES = ("parse", "deid", "ocr", "ner", "encode", OTHER)

#: the containers a DICOM object is found in (the innermost one names it)
CONTAINERS = ("raw", "form", "stow", "wado", "json", "zip", "tar")
#: prefix of a container reached through a compression layer (gzip, deflate, br, zstd, bzip2
#: or xz; a Content-Encoding or a compressed file, at any depth): "compressed>raw" is a
#: gzip-encoded upload of one object
INFLATED = "compressed>"
#: what was unwrapped to reach a DICOM object (``TransactionReport.objects_by_wrapping``
#: keys) and, for a transaction, its outermost DICOM-bearing wrapping
WRAPPINGS = (*CONTAINERS, *(INFLATED + c for c in CONTAINERS), OTHER)
#: the outermost wrapping of a message that carried no DICOM at all
NO_WRAPPING = "none"

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
CDR_FINDING_KINDS = (
    "preamble-executable",  # the 128-byte preamble held an executable header (PE/ELF/Mach-O)
    "preamble-nonzero",  # the preamble held other non-zero bytes
    "trailing-bytes",  # data followed the last data element
    "trailing-padding",  # only zero/space padding followed the last element
    "length-invalid",  # an element length did not fit the remaining bytes
    "overlay-removed",  # overlay planes (60xx) were dropped
    "pixel-high-bits",  # pixel values carried bits above High Bit (a hiding place); cleared
    "undefined-tag",  # a standard-group tag the dictionary does not define (or only as retired); removed
    "misplaced-attribute",  # an attribute valid only inside sequence items sat at the top level; removed
    OTHER,
)

_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def closed(value: object, allowed: tuple[str, ...]) -> str:
    """``value`` as a string if it is in ``allowed``, else ``"other"``.

    Only strings can match: a number or bytes that happens to print like an
    allowed value is still "other", so a caller's type error cannot smuggle
    anything through.
    """
    members = _SETS.get(allowed)
    if members is None:
        members = _SETS.setdefault(allowed, frozenset(allowed))
    if isinstance(value, str) and value in members:
        return value
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
