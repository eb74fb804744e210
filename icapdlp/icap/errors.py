"""Errors raised by the ICAP codec.

Like h11's ``RemoteProtocolError``, a :class:`ProtocolError` tells the caller
how to answer (``status_hint``) so the server needs no table of its own. The
message describes *where* the input went wrong (sizes, offsets, field names)
and never quotes a header value: those may carry patient data (file names,
URLs, cookies) and the message is logged.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer sent something that is not valid ICAP/1.0; answer ``status_hint`` and close."""

    def __init__(self, message: str, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class LimitExceeded(ProtocolError):
    """A configured limit was hit. ``limit`` names it (e.g. ``"icap_header_bytes"``)."""

    def __init__(self, limit: str, maximum: int, status_hint: int) -> None:
        super().__init__(f"{limit} exceeded (maximum {maximum})", status_hint)
        self.limit = limit
        self.maximum = maximum
