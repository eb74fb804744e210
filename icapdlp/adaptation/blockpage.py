"""The HTTP 403 a user sees when a message is blocked.

It names the reason code and the transaction id so a user can quote them to
an operator, who finds the same id in the audit log and the same reason in
the metrics. It never repeats anything from the message (no file names, no
URLs): those can hold patient data.
"""

from __future__ import annotations

import json

from icapdlp.http import HttpHeaders, HttpResponseHead
from icapdlp.transaction import Transaction
from icapdlp.verdict import BlockReason

_EXPLANATIONS = {
    BlockReason.UNPARSEABLE_DICOM: "The DICOM content could not be parsed safely.",
    BlockReason.LIMIT_EXCEEDED: "The content exceeds a size or structure limit.",
    BlockReason.UNSUPPORTED_ENCODING: "The content uses an encoding that cannot be inspected.",
    BlockReason.PIXEL_CLEANING_IMPOSSIBLE: "Burned-in text in the images could not be removed.",
    BlockReason.ENCRYPTED_ARCHIVE: "The archive is encrypted or password-protected.",
    BlockReason.UNSAFE_ARCHIVE: "The archive is malformed or unsafe (bomb or unsafe paths).",
    BlockReason.UNCHECKABLE_BULK_DATA: "Bulk data or frames without a DICOM header cannot be checked.",
    BlockReason.ENCAPSULATED_DOCUMENT: "The object carries an encapsulated document that is not allowed.",
    BlockReason.POLICY_BLOCKS_DICOM: "This service does not allow DICOM objects.",
    BlockReason.DEADLINE_EXCEEDED: "Processing took too long.",
    BlockReason.WORKER_CRASHED: "Processing failed.",
    BlockReason.SPOOL_FAILED: "The content could not be buffered.",
    BlockReason.INTERNAL_ERROR: "An internal error occurred.",
    BlockReason.UNINSPECTABLE: "The content could not be fully inspected (format, encoding or framing).",
    BlockReason.DICOMDIR: "A DICOM media directory (DICOMDIR) is not allowed.",
    BlockReason.MISSING_PIXEL_DATA: "An image object without its pixel data cannot be checked.",
}


def prefers_json(accept: str | None) -> bool:
    """True when the Accept header ranks application/json above text/html (q-values honoured)."""
    if not accept:
        return False
    best_json = best_html = -1.0
    for item in accept.split(","):
        fields = [f.strip() for f in item.split(";")]
        media = fields[0].lower()
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in ("application/json", "application/problem+json") or media.endswith("+json"):
            best_json = max(best_json, quality)
        elif media in ("text/html", "application/xhtml+xml", "text/*", "*/*"):
            best_html = max(best_html, quality)
    return best_json > 0 and best_json >= best_html


def block_response(tx: Transaction, reason: BlockReason) -> tuple[HttpResponseHead, bytes]:
    accept = tx.request.headers.get("Accept") if tx.request is not None else None
    text = _EXPLANATIONS.get(reason, "The content was blocked.")
    if prefers_json(accept):
        body = json.dumps({"blocked": True, "reason": reason.value, "transaction": _safe(tx.id),
                           "message": text}).encode()
        content_type = "application/json"
    else:
        body = (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Blocked</title></head>"
            f"<body><h1>Blocked</h1><p>{text}</p><p>Reason: <code>{reason.value}</code></p>"
            f"<p>Transaction: <code>{_safe(tx.id)}</code></p></body></html>\n"
        ).encode()
        content_type = "text/html; charset=utf-8"
    headers = HttpHeaders([
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Icapdlp-Reason", reason.value),
    ])
    return HttpResponseHead("HTTP/1.1", 403, "Forbidden", headers), body


def _safe(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in "-_.")
