"""Shared test doubles for the payload layer.

The payload layer is tested with a stand-in for the DICOM pipeline so that
these tests check wrappings (what was found, where, and how the message was
rebuilt) and nothing else; the real pipeline is exercised in tests/adaptation.
"""

from __future__ import annotations

import hashlib
from typing import Any

from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import PayloadWalker
from icapdlp.report import ObjectReport

MARK = b"REWRITTEN:"


def marker(data: bytes) -> bytes:
    return MARK + hashlib.sha256(data).hexdigest().encode()


class MarkingRewriter:
    """Replaces each DICOM object by a marker naming the original's hash."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.json_seen: list[dict[str, Any]] = []

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]:
        self.seen.append(data)
        return marker(data), ObjectReport(instance_ref=hashlib.sha256(data).hexdigest()[:8], study_ref="s1")

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
        self.json_seen.append(dataset)
        new = dict(dataset)
        new["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": "ANON"}]}
        return new, ObjectReport(instance_ref="j", study_ref="s1")


class UnchangedRewriter(MarkingRewriter):
    """Report-only behaviour: sees objects, returns them unchanged."""

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]:
        super().rewrite_dicom(data)
        return data, ObjectReport()

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
        super().rewrite_json(dataset)
        return dataset, ObjectReport()


def walk(content_type: str | None, body: bytes, *, codings: list[str] | None = None,
         direction: str = "request", options: PayloadOptions | None = None, rewriter=None,
         max_inflated: int = 1 << 30):
    rewriter = rewriter or MarkingRewriter()
    walker = PayloadWalker(rewriter, options or PayloadOptions(), direction, max_inflated)
    return walker.rewrite_message(content_type, codings or [], body), rewriter


def form_body(boundary: str, parts: list[tuple[bytes, bytes]], preamble: bytes = b"",
              epilogue: bytes = b"") -> bytes:
    """parts: (raw header lines without the blank line, content)."""
    out = [preamble]
    for index, (headers, content) in enumerate(parts):
        out.append((b"" if index == 0 and not preamble else b"\r\n") + b"--" + boundary.encode() + b"\r\n")
        out.append((headers + b"\r\n\r\n" if headers else b"\r\n") + content)
    out.append(b"\r\n--" + boundary.encode() + b"--" + epilogue)
    return b"".join(out)
