"""Release a large response's bytes while its later bytes are still being checked.

Why: Squid 5.7 stops reading a response from the origin once its 64 KiB
adaptation buffer is full and the ICAP server has not started answering
(Squid bug 5352). A server that answers only after reading the whole body
therefore stalls every response above about 64 KiB that the preview cannot
decide, until ``icap_io_timeout``. Measured with the real Squid: an echo that
holds back up to 48 KiB of the body keeps every download flowing (200 KB to
20 MB); holding back 64 KiB stalls.

How it stays closed: bytes leave only after a window holding them *and* the
``HOLD_BYTES`` after them passed the same probing walk that decides whether a
whole body passes (:func:`icapdlp.payload.walker.passes_unopened`). Anything
that walk cannot account for (a DICOM marker, a zip record, an encoded run
that decodes to an object, a format it cannot open) starts with a signature
that lies in some window with at least ``HOLD_BYTES`` after it, so the first
window that holds it fails and nothing from there on is released; the object
itself never leaves. The whole body is still classified at its end by the
one owner of that verdict; when the verdict is anything but "unchanged", the
answer that began is cut off, and the client gets a truncated response holding
only bytes a window cleared.

Windows start at multiples of ``ALIGN_BYTES`` from the body's start, so text
in UTF-16 or UTF-32 and tar blocks are read at the alignment the whole-body
walk reads them at, and each window repeats ``CONTEXT_BYTES`` already released
so that a signature across the cut is seen whole.
"""

from __future__ import annotations

import logging

from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import passes_unopened

log = logging.getLogger("icapdlp.adaptation")

#: bytes always held back behind the released ones: room for any signature's evidence (a
#: Part-10 preamble and magic, a bare dataset's first elements, an encoded run's start)
HOLD_BYTES = 8 * 1024
#: new bytes to collect before the next window is checked (bounds the checks per MiB); with
#: HOLD_BYTES at most 40 KiB wait unreleased, under the 48 KiB measured to keep Squid 5.7 flowing
STEP_BYTES = 32 * 1024
#: released bytes each window repeats in front of the new ones
CONTEXT_BYTES = 4 * 1024
#: release points and window starts are multiples of this (tar blocks, UTF-16/32 units)
ALIGN_BYTES = 512


class CheckedRelease:
    """A :class:`~icapdlp.adaptation.api.ReleaseCheck` over one body, fed in order.

    Stops for good at the first window that does not pass: from then on the
    body is only kept, and the end-of-body verdict decides alone.
    """

    __slots__ = ("_content_type", "_options", "_pending", "_context", "stopped", "cleared")

    def __init__(self, content_type: str | None, options: PayloadOptions) -> None:
        self._content_type = content_type
        self._options = options
        self._pending = bytearray()
        self._context = b""
        self.stopped = False
        self.cleared = 0

    def feed(self, data: bytes) -> int:
        if self.stopped:
            return 0
        pending = self._pending
        pending += data
        if len(pending) < HOLD_BYTES + STEP_BYTES:
            return 0
        window = self._context + pending
        try:
            passes = passes_unopened(self._content_type, [], window, self._options)
        except Exception as exc:  # a bug in a check is a window that did not pass (fail closed)
            log.error("release check raised %s; the body is held whole", type(exc).__name__)
            passes = False
        if not passes:
            self._stop()
            return 0
        cut = (len(pending) - HOLD_BYTES) // ALIGN_BYTES * ALIGN_BYTES
        self._context = (self._context + pending[:cut])[-CONTEXT_BYTES:]
        del pending[:cut]
        self.cleared += cut
        return cut

    def _stop(self) -> None:
        self.stopped = True
        self._pending = bytearray()
        self._context = b""
