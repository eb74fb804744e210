"""ICAP/1.0 (RFC 3507 + errata), sans-IO: bytes in, events out; responses in, bytes out.

- :mod:`.exchange` the server side of a connection: events and decisions in, bytes out,
                   the rules of 100 Continue, 204, 206, echo and early answers
- :mod:`.parser`   server-side request parser (``receive_data`` / ``next_event``)
- :mod:`.events`   the events it emits
- :mod:`.writer`   response (and request) heads with correct Encapsulated offsets
- :mod:`.chunked`  chunk lines, ``ieof`` and ``use-original-body``
- :mod:`.headers`  header blocks, start lines, Encapsulated
- :mod:`.errors`   :class:`ProtocolError` with the status to answer

Nothing here touches a socket, so every rule is tested byte by byte.
"""

from icapdlp.icap.errors import LimitExceeded, ProtocolError
from icapdlp.icap.events import (
    CONNECTION_CLOSED, NEED_DATA, PAUSED, BodyData, EndOfMessage, PreviewEnd, Request,
)
from icapdlp.icap.parser import CodecLimits, RequestParser

__all__ = [
    "CONNECTION_CLOSED", "NEED_DATA", "PAUSED", "BodyData", "CodecLimits", "EndOfMessage",
    "LimitExceeded", "PreviewEnd", "ProtocolError", "Request", "RequestParser",
]
