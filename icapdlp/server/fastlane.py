"""The fast lane: a 204 for the common no-change request without the general machinery.

Most ICAP traffic is a bodiless REQMOD (``Preview: 0`` + ``null-body``) or a
small body that fits in its preview, and most of it is answered "no change"
(204). The general path (:class:`~icapdlp.server.exchange.Exchange`) handles
every case through a stack of coroutines and costs several times what this
answer needs. :func:`answer_at_once` runs exactly the same steps for that one
shape synchronously:

1. The request head comes from the same parser as always, so every limit and
   every refusal (400, 404, 405, 413, 431, 505...) is the general path's.
2. Only a REQMOD/RESPMOD on a service configured for that method, with the
   HTTP head that method adapts, either
   without body or with a preview whose every byte (through the last chunk)
   is already buffered, is taken; anything else goes the general way with
   nothing consumed.
3. The adapter is asked exactly as before (``on_preview`` with the same
   Transaction, preview and ``complete``). Only a ``NoChange`` returned in its
   first step, where a 204 is allowed, is answered here.
4. Any other outcome (another decision, an exception, an adapter that
   awaits, an echo because 204 is not allowed) continues in the general code
   at the point the fast lane reached, with the adapter's first answer
   handed over (:class:`~icapdlp.server.resume.Resume`), so it is not asked
   twice and the bytes on the wire are the general path's.

``tests/server/test_fast_lane.py`` runs generated (and malformed) request
streams through a server with and without the fast lane and compares every
byte written and every transaction record.
"""

from __future__ import annotations

import time

from icapdlp.adaptation.api import NoChange
from icapdlp.icap import Request
from icapdlp.observability.events import TransactionRecord
from icapdlp.server.exchange import Exchange, new_transaction, serve_request
from icapdlp.server.resume import Resume

_ADAPTED = frozenset({"REQMOD", "RESPMOD"})


def answer_at_once(conn, request: Request, runtime, started: float):
    """Serve ``request``: ``True``/``False`` (keep-alive) when answered here, else the coroutine that will.

    The returned coroutine has not started; the caller runs it exactly like
    :func:`~icapdlp.server.exchange.serve_request`.
    """
    method = request.method
    if (method not in _ADAPTED or runtime.replies.services.get(request.service) != method
            or not conn.server.fast_lane or request.missing_http_head is not None):
        return serve_request(conn, request, runtime, started)
    parser = conn.parser
    if request.body_entity is None:
        preview, complete = b"", True
    elif request.preview is not None:
        buffered = parser.take_buffered_preview()
        if buffered is None:  # not all there yet, or something the general path must refuse
            return serve_request(conn, request, runtime, started)
        preview, complete = buffered
    else:
        return serve_request(conn, request, runtime, started)

    observer = conn.server.observer
    observer.request_started()
    tx = new_transaction(request)
    first = Resume.first_step(runtime.adapter.on_preview(tx, preview, complete))
    if first.finished and isinstance(first.value, NoChange):
        if request.body_entity is None:
            # a Preview header with null-body is still "inside a preview": 204 is always allowed
            may_204 = tx.allow_204 or request.preview is not None
            if may_204:
                parser.next_event()  # the EndOfMessage a null-body request always has ready
        else:
            may_204 = True  # inside a preview
            if not complete:
                parser.finish_early()  # the client waits for our answer, sends no more
        if may_204:
            conn.write(runtime.replies.no_content(close=request.close))
            conn.flush()
            observer.request_finished(TransactionRecord(
                icap_method=method, icap_status=204, outcome="no-change",
                duration_seconds=time.monotonic() - started, bytes_in=len(preview), tx=tx,
                report=first.value.report))
            return not request.close

    # the general path from here on, with the adapter's first answer handed over
    exchange = Exchange(conn, request, runtime, started)
    exchange.tx = tx
    exchange.first_answer = first
    if request.body_entity is None:
        step = exchange.adapt_bodiless()
    else:
        exchange.bytes_in = len(preview)
        step = exchange.decide_preview(preview, complete)
    return exchange.guarded(step)
