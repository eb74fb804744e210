"""application/dicom+json (PS3.18 Annex F): the DICOM JSON model, de-identified like instances.

The body is an array of datasets. Each is handed to the same de-identification
as binary instances (same profile, same key), so pseudonymised UIDs in a
QIDO/WADO metadata answer match the instances fetched next to it.
``BulkDataURI`` values and URL attributes (VR UR, e.g. Retrieve URL in QIDO
and STOW-RS answers) are dropped: they are URLs on the origin that embed the
original Study/Series/Instance UIDs, and a client following one would fetch
an object outside this proxy's view anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from icapdlp.report import ObjectReport
from icapdlp.verdict import BlockReason, Blocked

JsonRewriter = Callable[[dict[str, Any]], tuple[dict[str, Any], ObjectReport]]

#: JSON nesting deeper than this is refused before parsing (Python's parser recurses)
MAX_JSON_DEPTH = 200
_TAG_KEY = re.compile(rb'^\s*\[?\s*\{\s*"[0-9A-Fa-f]{8}"\s*:\s*\{')


def looks_like_dicom_json(prefix: bytes) -> bool:
    """True when the text starts like the DICOM JSON model (a tag key whose value is an object)."""
    return bool(_TAG_KEY.match(prefix[:512]))


def parse_datasets(body: bytes) -> list[dict[str, Any]]:
    try:
        value = json.loads(body)
    except RecursionError:  # the C parser stops at the interpreter's recursion limit
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "JSON nested too deeply") from None
    except ValueError:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "DICOM JSON body is not valid JSON") from None
    if _nesting_depth(value) > MAX_JSON_DEPTH:
        # the dataset code below recurses per sequence level: refuse before it does
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"JSON nested deeper than {MAX_JSON_DEPTH}")
    datasets = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) and all(_is_tag(k) for k in item) for item in datasets):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JSON body is not the DICOM JSON model")
    return datasets


def rewrite_json_body(body: bytes, rewrite: JsonRewriter, on_object: Callable[[ObjectReport], None]) -> bytes:
    """De-identify every dataset of a DICOM JSON body; returns the new body."""
    datasets = parse_datasets(body)
    out: list[dict[str, Any]] = []
    for dataset in datasets:
        strip_bulk_data_uris(dataset)
        strip_url_attributes(dataset)
        new, report = rewrite(dataset)
        on_object(report)
        out.append(new)
    single = not body.lstrip().startswith(b"[")
    return json.dumps(out[0] if single and len(out) == 1 else out, separators=(",", ":")).encode()


def strip_bulk_data_uris(node: Any) -> int:
    """Remove every BulkDataURI (at any depth) in place; returns how many were removed."""
    removed = 0
    if isinstance(node, dict):
        if "BulkDataURI" in node:
            del node["BulkDataURI"]
            removed += 1
        for value in node.values():
            removed += strip_bulk_data_uris(value)
    elif isinstance(node, list):
        for value in node:
            removed += strip_bulk_data_uris(value)
    return removed


def strip_url_attributes(node: Any) -> int:
    """Remove every attribute of VR UR (at any depth) in place; returns how many were removed."""
    removed = 0
    if isinstance(node, dict):
        for tag in [k for k, v in node.items() if isinstance(v, dict) and v.get("vr") == "UR"]:
            del node[tag]
            removed += 1
        for value in node.values():
            removed += strip_url_attributes(value)
    elif isinstance(node, list):
        for value in node:
            removed += strip_url_attributes(value)
    return removed


def _is_tag(key: Any) -> bool:
    return isinstance(key, str) and len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key)


def _nesting_depth(value: Any) -> int:
    """Deepest container nesting of a parsed JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest
