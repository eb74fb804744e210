"""The minimal block page the server itself can produce.

The adapter owns the real block page (``Adapter.block_response``). This one
is used when there is no adapter page to show: the pass-through adapter of
protocol tests, and the fallback when ``block_response`` itself fails. Like
every block page it shows only the reason code and the transaction id.
"""

from __future__ import annotations

from icapdlp.http import HttpHeaders, HttpResponseHead
from icapdlp.transaction import Transaction
from icapdlp.verdict import BlockReason


def minimal_block_response(tx: Transaction | None, reason: BlockReason) -> tuple[HttpResponseHead, bytes]:
    tx_id = tx.id if tx is not None else "-"
    page = f"Blocked by icapdlp: {reason.value}\nTransaction: {tx_id}\n".encode("ascii")
    head = HttpResponseHead("HTTP/1.1", 403, "Forbidden", HttpHeaders([
        ("Content-Type", "text/plain; charset=us-ascii"),
        ("Content-Length", str(len(page))),
        ("Cache-Control", "no-store"),
        ("X-Icapdlp-Reason", reason.value),
    ]))
    return head, page
