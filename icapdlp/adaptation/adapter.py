"""The Adapter the ICAP server calls: triage on the preview, rewrite in the worker pool.

``on_preview`` runs on the event loop and only looks at heads and at most a
preview's bytes (:mod:`icapdlp.payload.triage`), so the common "not DICOM"
answer costs microseconds. Everything that parses content is sent to the
worker pool; a spooled body travels there as a path. Any ``Blocked`` raised on
the way (by the pipeline, the payload parsers, or the pool's deadline and
crash handling) becomes a :class:`Block` decision with the same reason.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Literal

from icapdlp.adaptation import blockpage, worker_tasks
from icapdlp.adaptation.api import (
    Block,
    Body,
    BodyDecision,
    HoldOpen,
    NeedBody,
    NoChange,
    PartialReplace,
    PreviewDecision,
    Replace,
)
from icapdlp.http import HttpResponseHead
from icapdlp.adaptation.release import CheckedRelease, CodedRelease
from icapdlp.adaptation.heads import body_head, held_open_response, declared_length, with_new_body_length
from icapdlp.dicom.deid import uid_mapping
from icapdlp.dicom.options import ServiceMode
from icapdlp.payload.encoding import STREAMED_CODINGS
from icapdlp.payload.heads import piece_offset
from icapdlp.payload.media import is_dicom_type, is_multipart
from icapdlp.payload.triage import Triage, Verdict, triage
from icapdlp.payload.walker import check_head
from icapdlp.report import Container
from icapdlp.transaction import Transaction, TransactionReport
from icapdlp.verdict import BlockReason, Blocked


#: a whole body held in memory up to this size is classified on the event loop (a scan of
#: 256 KiB costs about half a millisecond, less than a worker round trip); larger ones go to
#: a worker, so that one event loop is not the bottleneck for large no-change bodies
LOOP_CLASSIFY_BYTES = 256 * 1024
#: JSON media types a held-open response may carry (and any ``+json`` suffix)
JSON_RESPONSE_TYPES = frozenset({"application/json", "text/json", "application/dicom+json"})
#: a response Squid 5.7 buffers whole before it waits on the ICAP server (its adaptation buffer)
SQUID_BUFFER_BYTES = 64 * 1024


class DlpAdapter:
    """One per server; stateless between transactions."""

    def __init__(self, settings: Any, pool: Any, policy: worker_tasks.Policy) -> None:
        self._settings = settings
        self._pool = pool
        self._policy = policy

    # -- Adapter protocol -------------------------------------------------

    async def on_preview(self, tx: Transaction, preview: bytes, complete: bool) -> PreviewDecision:
        refused = self._refused_head(tx)
        if refused is not None:
            return refused
        head = body_head(tx)
        if not tx.has_body or head is None:
            return NoChange()  # nothing inspected: no report (observers read None as nothing found)
        seen, early = self._first_look(tx, head, preview, complete)
        if early is not None:
            return early
        if complete:
            return await self._rewrite(tx, head, Body(data=preview), seen)
        if seen.verdict is Verdict.RAW_DICOM and self._may_use_206(tx, seen):
            partial = await self._header_only(tx, preview)
            if partial is not None:
                return partial
        return self._read_whole(tx, seen, head, preview)

    async def on_body(self, tx: Transaction, body: Body) -> BodyDecision:
        head = body_head(tx)
        if head is None:
            return NoChange()  # nothing inspected: no report (observers read None as nothing found)
        # the body is here whole: a small one in memory is cleared on the loop, not in a worker
        at_hand = body.data is not None and body.size <= LOOP_CLASSIFY_BYTES
        seen, early = self._first_look(tx, head, body.data if at_hand else b"", at_hand)
        if early is not None:
            return early
        return await self._rewrite(tx, head, body, seen)

    def block_response(self, tx: Transaction, reason: BlockReason) -> tuple[HttpResponseHead, bytes]:
        return blockpage.block_response(tx, reason)

    # -- helpers ----------------------------------------------------------

    def _first_look(self, tx: Transaction, head: Any, prefix: bytes,
                    complete: bool) -> tuple[Triage, NoChange | Block | None]:
        """Triage plus the decisions it settles on its own (pass, refuse, block-mode DICOM)."""
        headers = head.headers
        seen = triage(headers.get("Content-Type"), headers.get_all("Content-Encoding"), prefix, complete,
                      self._settings.payload)
        if tx.service not in self._settings.services:
            return seen, Block(BlockReason.INTERNAL_ERROR, "unknown service", TransactionReport())
        if seen.verdict is Verdict.PASS:
            return seen, NoChange()  # passed unopened: no report (observers read None as nothing found)
        if seen.verdict is Verdict.UNSUPPORTED_ENCODING:
            return seen, Block(BlockReason.UNSUPPORTED_ENCODING, "candidate body under an unsupported coding",
                               TransactionReport())
        if seen.verdict is Verdict.RAW_DICOM and self._mode(tx) is ServiceMode.BLOCK:
            return seen, Block(BlockReason.POLICY_BLOCKS_DICOM, "this service blocks DICOM objects",
                               _raw_report())
        if _is_byte_range(tx) and (seen.verdict is Verdict.RAW_DICOM or is_dicom_type(seen.media)):
            # a slice of an object cannot be parsed, and the next slice would carry its header
            return seen, Block(BlockReason.UNPARSEABLE_DICOM, "byte range of a DICOM object", _raw_report())
        return seen, None

    async def _rewrite(self, tx: Transaction, head: Any, body: Body, seen: Triage) -> BodyDecision:
        """The whole body through the worker pool: rewritten, unchanged, or blocked.

        ``seen`` (the first look's triage) travels with the body, so the worker
        does not classify it again (it reads a spooled body's leading bytes only
        when the first look had none of them to read).
        """
        direction: Literal["request", "response"] = "request" if tx.icap_method == "REQMOD" else "response"
        content_type, codings = head.headers.get("Content-Type"), head.headers.get_all("Content-Encoding")
        try:
            result = await self._pool.run(worker_tasks.rewrite_body, self._policy, tx.service, direction,
                                          content_type, codings, body.data, body.path, seen.verdict)
        except Blocked as blocked:
            return Block(blocked.reason, blocked.detail, worker_tasks.blocked_report(blocked))
        if not result.changed:
            return NoChange(result.report)
        new_body: bytes | Body
        new_body = result.data if result.data is not None else _owned_file(result.path, result.size)
        request, response = with_new_body_length(tx, result.size, self._uid_mapping(tx))
        return Replace(request=request, response=response, body=new_body, report=result.report)

    def _mode(self, tx: Transaction) -> ServiceMode:
        return self._settings.services[tx.service].mode

    def _uid_mapping(self, tx: Transaction):
        """The body's UID rewriting, for a STOW-RS path (None: the objects kept their UIDs)."""
        if self._mode(tx) is not ServiceMode.DEIDENTIFY:
            return None
        return uid_mapping(self._settings.profile_for(tx.service), self._policy.key)

    def _refused_head(self, tx: Transaction) -> Block | None:
        """What the heads alone refuse: an object in a request's target or a header value, or a
        body that is a piece of a larger one past its start under ``partial_bodies = "block"``.

        Asked once per message, bodiless ones included (a GET can carry a
        small object in its query). A response's own head is checked too; the
        request head of a RESPMOD was the REQMOD service's to check.
        """
        settings = self._settings
        service = settings.services.get(tx.service)
        if service is None or service.uninspectable == "pass":
            return None
        options = settings.payload
        if options.check_heads:
            target, headers = ((tx.request.target, tx.request.headers) if tx.icap_method == "REQMOD"
                               else (None, tx.response.headers if tx.response is not None else ()))
            try:
                check_head(target, headers, options)
            except Blocked as blocked:
                return Block(blocked.reason, blocked.detail, TransactionReport())
        if options.partial_bodies == "block" and tx.has_body:
            place = piece_offset(tx.response.status if tx.icap_method == "RESPMOD" and tx.response else None,
                                 tx.request.headers if tx.request is not None else (),
                                 tx.response.headers if tx.response is not None else ())
            if place:  # None: the whole body; 0: the first piece, which holds any object's header
                return Block(BlockReason.UNINSPECTABLE, "a piece of a larger body, past its start",
                             TransactionReport())
        return None

    def _read_whole(self, tx: Transaction, seen: Triage, head: Any, preview: bytes) -> NeedBody:
        """Read the body whole; for a large response, also how its answer begins before the verdict.

        Squid 5.7 stops reading a response from the origin once about 64 KiB
        of it wait for an answer that has not begun (bug 5352). So a response
        that may not fit is either *released* while checked (a body that may
        be no DICOM: its cleared bytes leave early) or *held open* (the answer
        begins with a head that promises no length, measured to keep Squid
        reading, and the body follows its verdict). A release check that
        stops before it cleared anything (a zip, say) falls back to holding
        open. Multipart and JSON responses (WADO-RS, DICOM JSON metadata) may
        be rewritten, so they are held open from the start, with filler their
        formats ignore (a preamble, RFC 2046 section 5.1.1; leading white
        space, RFC 8259 section 2) that also keeps the client's own timers
        quiet; everything else may be DICOM or coded, and gets no filler.
        """
        if not self._answers_early(tx, head):
            return NeedBody()
        hold = HoldOpen(held_open_response(tx), _filler(seen, preview))
        if seen.verdict is not Verdict.NEED_BODY or (not seen.codings and _may_be_rewritten(seen)):
            return NeedBody(hold_open=hold)
        content_type, options = head.headers.get("Content-Type"), self._settings.payload
        if not seen.codings:
            return NeedBody(release=CheckedRelease(content_type, options), hold_open=hold)
        if len(seen.codings) == 1 and seen.codings[0] in STREAMED_CODINGS:
            return NeedBody(release=CodedRelease(seen.codings[0], content_type, options), hold_open=hold)
        return NeedBody(hold_open=hold)  # zstd, stacked codings: no bounded streaming decoder

    def _answers_early(self, tx: Transaction, head: Any) -> bool:
        """A response whose answer may begin before its verdict (``payload.release_responses``).

        Responses only: Squid holds a request's body itself, and an upload cut
        off half way would still reach the origin in part. A body declared to
        fit Squid's 64 KiB buffer is held too: Squid sends it all without
        waiting, and it keeps its cheaper 204 and a proper block page.
        """
        if not (tx.icap_method == "RESPMOD" and self._settings.payload.release_responses):
            return False
        length = declared_length(head.headers)
        return length is None or length > SQUID_BUFFER_BYTES

    def _may_use_206(self, tx: Transaction, seen: Triage) -> bool:
        head = body_head(tx)
        return (tx.allow_206 and self._settings.payload.use_206 and self._mode(tx) is ServiceMode.DEIDENTIFY
                and not seen.codings and head is not None and declared_length(head.headers) is not None)

    async def _header_only(self, tx: Transaction, preview: bytes) -> PartialReplace | Block | None:
        head = body_head(tx)
        total = declared_length(head.headers)
        if total is None or total <= len(preview):
            return None
        try:
            answer = await self._pool.run(worker_tasks.header_only, self._policy, tx.service, preview, total)
        except Blocked as blocked:
            return Block(blocked.reason, blocked.detail, _raw_report())
        if answer is None:
            return None
        prefix, offset, report = answer
        request, response = with_new_body_length(tx, len(prefix) + total - offset, self._uid_mapping(tx))
        return PartialReplace(request, response, prefix, offset, report)


def _may_be_rewritten(seen: Triage) -> bool:
    """A multipart or JSON response: it may carry objects to rewrite (WADO-RS, DICOM JSON)."""
    essence = seen.media.essence
    return is_multipart(seen.media) or essence in JSON_RESPONSE_TYPES or essence.endswith("+json")


def _filler(seen: Triage, preview: bytes) -> bytes:
    """Bytes the response's format ignores in front of its body (none under a content coding).

    JSON only when the preview shows it starts as plain UTF-8 JSON: in front
    of a byte order mark a newline makes the text invalid (parsers drop a
    mark only as the very first character), and in front of UTF-16 or UTF-32
    text one byte shifts every character.
    """
    if seen.codings or not _may_be_rewritten(seen):
        return b""
    if is_multipart(seen.media):
        return b"\r\n"
    return b"\n" if preview[:1] in _JSON_FIRST_BYTES and b"\x00" not in preview[:4] else b""


#: the bytes a JSON text in UTF-8 without a byte order mark can begin with (RFC 8259 section 2)
_JSON_FIRST_BYTES = frozenset(bytes([b]) for b in b'{["-0123456789tfn \t\r\n')


def _is_byte_range(tx: Transaction) -> bool:
    """A 206 HTTP response: the body is a slice of a representation, not the whole of it."""
    return tx.response is not None and tx.response.status == 206


def _raw_report() -> TransactionReport:
    """One raw object, counted before (or without) running the pipeline on it."""
    return TransactionReport(objects_by_wrapping={Container.RAW.value: 1}, wrapping=Container.RAW.value)


def _owned_file(path: str | None, size: int) -> Body:
    """A Body over a worker's output file, deleted once the server drops the Body."""
    assert path is not None
    body = Body(path=path, size=size)
    weakref.finalize(body, _unlink_quietly, path)
    return body


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
