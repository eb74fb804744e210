"""The ICAP responses a server sends, with ISTag, Date and Server filled in.

One :class:`Replies` object belongs to one configuration generation: a reload
builds a new one (new ISTag) and swaps it together with the adapter, so a
request never sees a tag that does not match the policy that judged it.
The bodiless answers (204, errors) are cached per second because they are
the hot path of pass-through traffic.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from icapdlp import __version__
from icapdlp.http import HttpRequestHead, HttpResponseHead
from icapdlp.icap.writer import CONTINUE, REASONS, encode_response

SERVER_NAME = f"icapdlp/{__version__}"


class _DateCache:
    """RFC 7231 date of the current second, formatted once per second."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.value = formatdate(second, usegmt=True)
        return self.value


_dates = _DateCache()


class Replies:
    """Builds response heads for one ISTag and service table."""

    CONTINUE = CONTINUE

    def __init__(
        self,
        istag: str,
        services: dict[str, str],
        *,
        preview_size: int,
        options_ttl: int,
        max_connections: int,
        allow_206: bool = True,
    ) -> None:
        self.istag = istag
        self.services = dict(services)  # service name -> "REQMOD" / "RESPMOD"
        self.preview_size = preview_size
        self.options_ttl = options_ttl
        self.max_connections = max_connections
        self.allow_206 = allow_206
        self._cache: dict[tuple[int, bool], bytes] = {}
        self._cache_second = -1

    def _common(self, close: bool) -> list[tuple[str, str]]:
        fields = [("ISTag", self.istag), ("Date", _dates.now()), ("Server", SERVER_NAME)]
        if close:
            fields.append(("Connection", "close"))
        return fields

    def _bodiless(self, status: int, close: bool) -> bytes:
        second = int(time.time())
        if second != self._cache_second:
            self._cache.clear()
            self._cache_second = second
        key = (status, close)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = encode_response(status, self._common(close))
        return cached

    def no_content(self, close: bool = False) -> bytes:
        return self._bodiless(204, close)

    def error(self, status: int, close: bool = True) -> bytes:
        return self._bodiless(status, close)

    def options(self, service: str, close: bool = False) -> bytes:
        fields = [
            ("Methods", self.services[service]),
            ("Service", f"{SERVER_NAME} DICOM de-identification"),
            *self._common(close),
            ("Max-Connections", str(self.max_connections)),
            ("Options-TTL", str(self.options_ttl)),
            ("Preview", str(self.preview_size)),
            ("Transfer-Preview", "*"),
            ("Allow", "204, 206" if self.allow_206 else "204"),
        ]
        return encode_response(200, fields)

    def message(
        self,
        status: int,
        *,
        http_request: HttpRequestHead | None = None,
        http_response: HttpResponseHead | None = None,
        body_entity: str | None = None,
        close: bool = False,
    ) -> bytes:
        """A 200 or 206 head carrying HTTP heads; a chunked body follows when ``body_entity``."""
        return encode_response(status, self._common(close), http_request=http_request,
                               http_response=http_response, body_entity=body_entity)

    @staticmethod
    def reason(status: int) -> str:
        return REASONS.get(status, "Unknown")
