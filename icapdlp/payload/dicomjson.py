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
#: an object member whose name is a tag and whose value is an object: the DICOM JSON model's unit
_TAG_MEMBER = re.compile(rb'"[0-9A-Fa-f]{8}"\s*:\s*\{')
_UTF8_BOM = b"\xef\xbb\xbf"
#: the same member with escaped quotes (the model as a JSON string inside JSON, any depth of
#: escaping, \u0022 too) or single quotes (a JavaScript literal, YAML flow style, a Python repr)
#: (each pattern starts with a literal the search scans for at C speed: prose is full of ')
_QUOTED_TAG_MEMBERS = (re.compile(rb'\\"[0-9A-Fa-f]{8}\\+"\s*:\s*\{'),
                       re.compile(rb"'[0-9A-Fa-f]{8}'\s*:\s*\{"),
                       re.compile(rb"\\u0022[0-9A-Fa-f]{8}\\+u0022\s*:\s*\{", re.I))


def looks_like_dicom_json(text: bytes) -> bool:
    """True when ``text`` holds, anywhere, a tag-named member whose value is an object.

    Anywhere, not only at the start: a BOM, any amount of leading white space,
    ``[{}, {...}]`` or a dataset nested in an API's own wrapper object all
    reach a receiver that parses the JSON. A match only means "parse it and
    look"; :func:`dataset_slots` decides what is a dataset.
    """
    return _TAG_MEMBER.search(text) is not None


def looks_like_quoted_dicom_json(text: bytes) -> bool:
    """True when ``text`` holds a tag-named member written with escaped or single quotes.

    ``json.loads`` twice (a webhook or a queue that wraps its payload as a
    string), a JavaScript ``eval``, ``yaml.safe_load`` or ``ast.literal_eval``
    give the model back; its escapes cannot be rewritten in place, so the
    caller refuses it.
    """
    if b"\\" not in text:  # (memchr: prose has no backslash; two of the three looks start with one)
        return _QUOTED_TAG_MEMBERS[1].search(text) is not None
    return any(pattern.search(text) for pattern in _QUOTED_TAG_MEMBERS)


def load_json(body: bytes) -> Any:
    """The parsed JSON value of ``body`` (a UTF-8 BOM allowed); Blocked when it is not JSON."""
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM):]
    try:
        value = json.loads(body)
    except RecursionError:  # the C parser stops at the interpreter's recursion limit
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "JSON nested too deeply") from None
    except ValueError:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "DICOM JSON body is not valid JSON") from None
    if _nesting_depth(value) > MAX_JSON_DEPTH:
        # the dataset code below recurses per sequence level: refuse before it does
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"JSON nested deeper than {MAX_JSON_DEPTH}")
    return value


def is_dataset(node: Any) -> bool:
    """A non-empty object whose members are all tags with object values, one at least with a VR.

    An object mixing tag-named elements with other members is neither a
    dataset nor plain data: a receiver could read the elements either way, so
    it is refused as uninspectable instead of guessed.
    """
    if not isinstance(node, dict) or not node:
        return False
    tagged = [key for key, value in node.items()
              if _is_tag(key) and isinstance(value, dict) and "vr" in value]
    if not tagged:
        return False
    if len(tagged) != len(node) and not all(_is_tag(key) and isinstance(value, dict)
                                            for key, value in node.items()):
        raise Blocked(BlockReason.UNINSPECTABLE, "a JSON object mixes DICOM elements with other members")
    return True


def dataset_slots(root: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every DICOM JSON dataset in ``root``, outermost first, not inside each other.

    ``root`` itself is reported as ``(None, None)``.
    """
    if is_dataset(root):
        return [(None, None)]
    slots: list[tuple[Any, Any]] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            if is_dataset(child):
                slots.append((node, key))
            elif isinstance(child, (dict, list)):
                stack.append(child)
    return slots


def parse_datasets(body: bytes) -> list[dict[str, Any]]:
    """The datasets of a body declared to be the DICOM JSON model (anything else is refused)."""
    value = load_json(body)
    datasets = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) and all(_is_tag(k) for k in item) for item in datasets):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JSON body is not the DICOM JSON model")
    return datasets


def rewrite_json_body(body: bytes, rewrite: JsonRewriter, on_object: Callable[[ObjectReport], None]) -> bytes:
    """De-identify every dataset of a DICOM JSON body; returns the new body."""
    datasets = parse_datasets(body)
    out = [_rewrite_dataset(dataset, rewrite, on_object) for dataset in datasets]
    single = not body.lstrip().startswith(b"[")
    return json.dumps(out[0] if single and len(out) == 1 else out, separators=(",", ":")).encode()


def rewrite_embedded_datasets(body: bytes, rewrite: JsonRewriter,
                              on_object: Callable[[ObjectReport], None]) -> bytes:
    """De-identify DICOM JSON datasets wherever they stand in a JSON document of any shape.

    Called for text that holds tag-named members (:func:`looks_like_dicom_json`).
    Returns ``body`` itself when the document holds no dataset, else the
    re-serialised document. Text that holds such members but does not parse
    as JSON is refused: a lenient receiver (JSON5, a JavaScript ``eval``)
    could still read the elements in it.
    """
    try:
        root = load_json(body)
    except Blocked as blocked:
        if blocked.reason is BlockReason.LIMIT_EXCEEDED:
            raise
        raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                      "text holds DICOM JSON elements but is not valid JSON") from None
    slots = dataset_slots(root)
    if not slots:
        return body
    for container, key in slots:
        if container is None:
            root = _rewrite_dataset(root, rewrite, on_object)
        else:
            container[key] = _rewrite_dataset(container[key], rewrite, on_object)
    return json.dumps(root, separators=(",", ":")).encode()


def _rewrite_dataset(dataset: dict[str, Any], rewrite: JsonRewriter,
                     on_object: Callable[[ObjectReport], None]) -> dict[str, Any]:
    strip_bulk_data_uris(dataset)
    strip_url_attributes(dataset)
    new, report = rewrite(dataset)
    on_object(report)
    return new


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
