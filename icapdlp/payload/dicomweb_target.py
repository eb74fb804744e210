"""Instance UIDs in a DICOMweb request target, mapped like the objects in the body.

Why: a STOW-RS request to ``/studies/{StudyInstanceUID}`` (PS3.18 10.5)
names the study in its path. Once the instances in the body carry keyed
UIDs, the path must carry the same ones: the original would leak to the
origin, and a conformant server rejects instances whose Study Instance UID
differs from the path's. The same holds for ``/series/{uid}`` and
``/instances/{uid}`` below it, which PS3.18 resources also use.

Only the path changes. A query string (QIDO-RS ``?PatientID=...``) is a
search for a patient, not an object, and passes as sent; so do path segments
after ``studies``/``series``/``instances`` that are not UIDs. Segments are
compared after percent-decoding, as a server reads them, so ``%31.2.3`` is
found as ``1.2.3``; the mapped UID is written in plain form. Empty and dot
segments and ``;`` parameters, which servers normalise away, cannot hide a
UID from the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

#: the resource names whose next path segment is an instance UID (PS3.18 resources)
UID_RESOURCES = frozenset({"studies", "series", "instances"})
#: PS3.5 9.1: digits and dots, at most 64 characters
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_MAX_UID_CHARS = 64


def map_target_uids(target: str, map_uid: Callable[[str], str]) -> str:
    """``target`` (origin-form or absolute-form) with each UID after studies/series/instances mapped.

    Read as lenient servers read a path: dot segments resolved (RFC 3986
    5.2.4), empty segments skipped (nginx merges slashes), path parameters
    after ``;`` set aside (servlet containers drop them).
    """
    prefix, path, rest = _split(target)
    segments = path.split("/")
    if any(unquote(segment.partition(";")[0]) in (".", "..") for segment in segments):
        segments = _without_dot_segments(segments)
    changed = False
    pending = False  # the previous non-empty segment named a UID resource
    for i, segment in enumerate(segments):
        name, sep, params = segment.partition(";")
        decoded = unquote(name)
        if not decoded:
            continue
        if pending and len(decoded) <= _MAX_UID_CHARS and _UID.fullmatch(decoded):
            segments[i] = map_uid(decoded) + sep + params
            changed = changed or segments[i] != segment
        pending = decoded.lower() in UID_RESOURCES
    return prefix + "/".join(segments) + rest if changed else target


def _without_dot_segments(segments: list[str]) -> list[str]:
    """``.`` and ``..`` resolved as a server resolves them before routing."""
    out: list[str] = []
    for segment in segments:
        name = unquote(segment.partition(";")[0])
        if name == ".":
            continue
        if name == "..":
            if len(out) > 1:
                out.pop()
            continue
        out.append(segment)
    if segments and unquote(segments[-1]) in (".", ".."):
        out.append("")  # "/a/b/.." is the directory "/a/"
    return out


def _split(target: str) -> tuple[str, str, str]:
    """(scheme and authority, path, query and fragment) of a request target."""
    prefix = ""
    if "://" in target:
        scheme, _, after = target.partition("://")
        slash = after.find("/")
        if slash < 0:
            return target, "", ""
        prefix, target = scheme + "://" + after[:slash], after[slash:]
    cut = min((i for i in (target.find("?"), target.find("#")) if i >= 0), default=len(target))
    return prefix, target[:cut], target[cut:]
