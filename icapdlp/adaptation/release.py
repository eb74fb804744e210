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

A window must be read the way the whole body is read. The first window
fixes the reading: UTF-8 text, UTF-16/32 text (by its mark or its NULs), or
binary. A later text window is trimmed to whole characters, a later wide
window is read with the first one's byte order mark in front; one that does
not read that way (binary inside text) stops the release. Windows start at
multiples of ``ALIGN_BYTES`` from the body's start (tar blocks, wide-text
units) and repeat ``CONTEXT_BYTES`` already released, so a signature across
the cut is seen whole; the base64 characters of the bytes before a window
(``JOINED_BYTES`` of them) go in front of it, since the whole-body walk joins
a text's base64 characters across any distance. A body that opens like a
multipart body is held whole:
only its end (the close delimiter) says whether it is one.
"""

from __future__ import annotations

import logging
import re
from collections import deque

from icapdlp.payload import signatures, textruns
from icapdlp.payload.encoding import StreamDecoder
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import may_open_as_multipart, passes_unopened

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
#: base64 characters of the bytes before a window carried in front of it: the whole-body walk
#: reads every base64 character of a text in order, whatever lies between them (as Python's
#: b64decode does), so pieces far apart join there; a window must see the join too. Enough for
#: the start of an object (a Part-10 preamble and marker, a dataset's first elements): the first
#: window whose join shows it stops the release, before the pieces after it leave
JOINED_BYTES = 4 * 1024
#: in binary only runs count: random bytes hold a base64 character in four, and their join is noise
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=_-]{16,}")

_BINARY, _TEXT = "binary", "text"
#: the mark each wide codec is read with in a later window
_MARKS = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
          "utf-32-be": b"\x00\x00\xfe\xff"}


class CheckedRelease:
    """A :class:`~icapdlp.adaptation.api.ReleaseCheck` over one body, fed in order.

    Stops for good at the first window that does not pass: from then on the
    body is only kept, and the end-of-body verdict decides alone.
    """

    __slots__ = ("_content_type", "_options", "_pending", "_context", "_joined", "_reading", "stopped",
                 "cleared")

    def __init__(self, content_type: str | None, options: PayloadOptions) -> None:
        self._content_type = content_type
        self._options = options
        self._pending = bytearray()
        self._context = b""
        self._joined = b""  # the last JOINED_BYTES base64 characters before the window
        self._reading: str | None = None  # _BINARY, _TEXT or a wide codec, fixed by the first window
        self.stopped = False
        self.cleared = 0

    def feed(self, data: bytes) -> int:
        if self.stopped:
            return 0
        pending = self._pending
        pending += data
        if len(pending) < HOLD_BYTES + STEP_BYTES:
            return 0
        try:
            window = self._window(self._context + pending)
            passes = window is not None and passes_unopened(self._content_type, [], window, self._options)
        except Exception as exc:  # a bug in a check is a window that did not pass (fail closed)
            log.error("release check raised %s; the body is held whole", type(exc).__name__)
            passes = False
        if not passes:
            self._stop()
            return 0
        cut = (len(pending) - HOLD_BYTES) // ALIGN_BYTES * ALIGN_BYTES
        span = self._context + pending[:cut]
        if len(span) > CONTEXT_BYTES and self._reading in (_TEXT, _BINARY):
            self._joined = (self._joined + _base64_characters(span[:-CONTEXT_BYTES], self._reading))[-JOINED_BYTES:]
        self._context = span[-CONTEXT_BYTES:]
        del pending[:cut]
        self.cleared += cut
        return cut

    def _window(self, raw: bytes) -> bytes | None:
        """``raw`` as the whole-body walk would read it, or None when it cannot be read that way."""
        first = self.cleared == 0
        if first:
            if may_open_as_multipart(raw):
                return None
            self._reading = _first_reading(raw)
        reading = self._reading
        if reading is None:
            return None
        if reading == _BINARY:
            return self._joined + raw
        if reading == _TEXT:
            text = _whole_characters(raw, first)
            return self._joined + text if signatures.is_text(text) else None
        unit = 4 if reading.startswith("utf-32") else 2
        body = raw[:len(raw) // unit * unit]
        if not first:
            body = _MARKS[reading] + _whole_wide_units(body, reading)
        wide = signatures.wide_text(body)
        return body if wide is not None and wide[1] == reading else None

    def _stop(self) -> None:
        self.stopped = True
        self._pending = bytearray()
        self._context = self._joined = b""


def _base64_characters(released: bytes, reading: str) -> bytes:
    """The base64 characters a decoder joins from ``released`` (text: all of them; binary: its runs)."""
    if reading == _TEXT:
        return textruns.base64_characters(released)
    return b"".join(_BASE64_RUN.findall(released))


def _first_reading(window: bytes) -> str | None:
    """How the whole-body walk reads this body, or None when it reads it more than one way."""
    if signatures.is_text(_whole_characters(window, True)):
        return _TEXT
    readings = signatures.wide_texts(window[:len(window) // 4 * 4])
    if len(readings) > 1:  # wide text without a mark, in both byte orders: each is walked whole
        return None
    return readings[0][1] if readings else _BINARY


def _whole_characters(window: bytes, at_start: bool) -> bytes:
    """UTF-8 ``window`` without a character cut at either end (at most 3 bytes off each)."""
    start = 0
    if not at_start:
        while start < 3 and start < len(window) and 0x80 <= window[start] <= 0xBF:
            start += 1
    end = len(window)
    lead = end - 1
    while lead > start and end - lead < 4 and 0x80 <= window[lead] <= 0xBF:
        lead -= 1
    if lead >= start and window[lead] >= 0xC0:
        needed = 2 if window[lead] < 0xE0 else 3 if window[lead] < 0xF0 else 4
        if end - lead < needed:
            end = lead
    return window[start:end]


def _whole_wide_units(body: bytes, codec: str) -> bytes:
    """UTF-16 ``body`` without half a surrogate pair at either end (UTF-32 has none)."""
    if not codec.startswith("utf-16"):
        return body
    order = "little" if codec.endswith("le") else "big"
    if len(body) >= 2 and 0xDC00 <= int.from_bytes(body[:2], order) <= 0xDFFF:
        body = body[2:]
    if len(body) >= 2 and 0xD800 <= int.from_bytes(body[-2:], order) <= 0xDBFF:
        body = body[:-2]
    return body


#: coded bytes decoded per mark: coded bytes leave at these boundaries, so this bounds how far
#: the coded release lags the decoded one
CODED_SLICE_BYTES = 4 * 1024
#: decoded bytes asked of the decoder per piece
DECODED_PIECE_BYTES = 64 * 1024
#: decoded bytes the check walks per coded byte, at most (plus ``INFLATE_SLACK_BYTES``), over the
#: body so far and over each arrival alone: it walks them on the event loop (about 100 ms per MiB
#: of text), so a coded arrival, or the catch-up of 512 KiB kept before a pause, must cost about
#: what the same bytes uncoded would, not ``max_compression_ratio`` (200) times that (measured:
#: 512 KiB of a 160:1 page, 12 s; a 64 KiB burst behind megabytes that barely compress, 2.9 s).
#: Markup inflates 3-5:1; a body that inflates more stops the release (it is held open instead)
#: and is decoded at its end by a worker
RELEASE_INFLATE_RATIO = 10
#: decoded bytes allowed beyond that ratio times the coded ones (a stream's first slices)
INFLATE_SLACK_BYTES = 256 * 1024


class CodedRelease:
    """A release check over a body under one content coding (gzip, deflate, br).

    The decoded content goes through a :class:`CheckedRelease`; a coded byte
    leaves only when everything the coded bytes up to it decode to has been
    cleared, so a receiver that decodes the released prefix gets cleared
    content only. A stream that is corrupt, is followed by junk, or inflates
    past the payload limits stops the release; the end-of-body walk, which
    decodes the whole body, gives the verdict.
    """

    __slots__ = ("_decoder", "_inner", "_marks", "_coded", "_decoded", "_max_decoded", "_ratio",
                 "stopped", "cleared")

    def __init__(self, coding: str, content_type: str | None, options: PayloadOptions) -> None:
        self._decoder = StreamDecoder(coding)
        self._inner = CheckedRelease(content_type, options)
        self._marks: deque[tuple[int, int]] = deque()  # (coded bytes, decoded bytes) at slice ends
        self._coded = self._decoded = 0
        self._max_decoded = options.max_inflated_bytes
        self._ratio = min(options.max_compression_ratio, RELEASE_INFLATE_RATIO)
        self.stopped = False
        self.cleared = 0

    def feed(self, data: bytes) -> int:
        if self.stopped:
            return 0
        arrival_budget = self._decoded + self._ratio * len(data) + INFLATE_SLACK_BYTES
        try:
            for at in range(0, len(data), CODED_SLICE_BYTES):
                coded = data[at:at + CODED_SLICE_BYTES]
                for piece in self._decoder.decode(coded, DECODED_PIECE_BYTES):
                    self._decoded += len(piece)
                    if (self._decoded > self._max_decoded or self._decoded > arrival_budget
                            or self._decoded > self._ratio * (self._coded + len(coded)) + INFLATE_SLACK_BYTES):
                        raise ValueError("inflates past the payload limits")
                    self._inner.feed(piece)
                self._coded += len(coded)
                self._marks.append((self._coded, self._decoded))
        except Exception as exc:  # corrupt, junk after the stream, a bomb, or a bug: hold the rest
            log.info("coded release stopped (%s); the body is held whole", type(exc).__name__)
            self._stop()
            return 0
        if self._inner.stopped:
            self._stop()
            return 0
        released = self.cleared
        marks = self._marks
        while marks and marks[0][1] <= self._inner.cleared:
            released = marks.popleft()[0]
        more, self.cleared = released - self.cleared, released
        return more

    def _stop(self) -> None:
        self.stopped = True
        self._marks.clear()
