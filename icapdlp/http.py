"""HTTP message heads as they travel through ICAP: the ground floor every layer may use.

The ICAP codec parses the encapsulated heads into these types, the adapter
reads and rewrites them, the observer labels metrics from them. They live
here, below all of those, so that the protocol package does not import the
adaptation layer to name what it parses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class HttpHeaders:
    """An ordered, case-preserving list of HTTP header fields.

    Order and spelling are kept because a rewritten message should differ from
    the original only where the rewrite requires it.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = list(fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HttpHeaders) and self._fields == other._fields

    def __repr__(self) -> str:  # names only: values may hold PHI (filenames, cookies)
        return f"HttpHeaders({[name for name, _ in self._fields]!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self._fields:
            if key.lower() == lowered:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self._fields if key.lower() == lowered]

    def without(self, *names: str) -> "HttpHeaders":
        drop = {n.lower() for n in names}
        return HttpHeaders((k, v) for k, v in self._fields if k.lower() not in drop)

    def replaced(self, name: str, value: str) -> "HttpHeaders":
        """A copy with ``name`` set to ``value`` in place of its first occurrence (or appended)."""
        lowered = name.lower()
        out: list[tuple[str, str]] = []
        done = False
        for key, old in self._fields:
            if key.lower() == lowered:
                if not done:
                    out.append((key, value))
                    done = True
                continue
            out.append((key, old))
        if not done:
            out.append((name, value))
        return HttpHeaders(out)


@dataclass(frozen=True)
class HttpRequestHead:
    method: str
    target: str
    version: str
    headers: HttpHeaders


@dataclass(frozen=True)
class HttpResponseHead:
    version: str
    status: int
    reason: str
    headers: HttpHeaders


def with_content_length(head: HttpRequestHead | HttpResponseHead, length: int):
    """Keep a Content-Length in step with a new body (only if the head declares one)."""
    if head.headers.get("Content-Length") is None:
        return head
    headers = head.headers.replaced("Content-Length", str(length))
    if isinstance(head, HttpRequestHead):
        return HttpRequestHead(head.method, head.target, head.version, headers)
    return HttpResponseHead(head.version, head.status, head.reason, headers)
