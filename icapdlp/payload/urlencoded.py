"""application/x-www-form-urlencoded bodies: every value decoded, inspected, and encoded back.

``curl --data-urlencode file@ct.dcm`` and HTML forms send a file's bytes
percent-encoded inside a field value; Werkzeug, PHP and every web framework
decode it before the application sees it. Read as raw bytes the body is
harmless-looking ASCII, so each value is decoded the way those receivers
decode it (``+`` is a space, ``%XX`` a byte) and handed to the walker like any
other entity. A value that changed is encoded again; names, separators and
unchanged values keep their exact bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, unquote_to_bytes

#: what a url-encoded body consists of: unreserved characters, escapes, '+', '=' and separators
_FORM = re.compile(rb"[A-Za-z0-9\-._~*!'()%+=&;,/:@?$\[\]]*")
#: values shorter than this cannot hold a DICOM object (128-byte preamble + magic)
MIN_VALUE_BYTES = 132


@dataclass
class Field:
    name: bytes  # raw, as received (including '=' when present)
    value: bytes  # raw, still encoded


def looks_urlencoded(body: bytes) -> bool:
    """True when ``body`` has the url-encoded form grammar and at least one escaped or long value."""
    if b"=" not in body or not _FORM.fullmatch(body):
        return False
    return any(len(value) >= MIN_VALUE_BYTES for _, value in _split(body))


def _split(body: bytes) -> list[tuple[bytes, bytes]]:
    """(name with '=', raw value) per field, splitting on '&' (and ';', which some receivers accept)."""
    fields = []
    for piece in re.split(rb"[&;]", body):
        name, sep, value = piece.partition(b"=")
        fields.append((name + sep, value))
    return fields


def decode_value(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" "))


def encode_value(data: bytes) -> bytes:
    return quote_from_bytes(data, safe="").encode("ascii")


def rewrite_values(body: bytes, rewrite) -> bytes:
    """``body`` with each long value passed through ``rewrite(decoded) -> decoded'``.

    ``rewrite`` returns its argument itself to mean "unchanged"; the body object
    itself comes back when no value changed.
    """
    separators = re.findall(rb"[&;]", body)
    pieces: list[bytes] = []
    changed = False
    for index, (name, raw) in enumerate(_split(body)):
        if len(raw) >= MIN_VALUE_BYTES:
            decoded = decode_value(raw)
            new = rewrite(decoded)
            if new is not decoded:
                raw = encode_value(new)
                changed = True
        pieces.append(name + raw)
        if index < len(separators):
            pieces.append(separators[index])
    return b"".join(pieces) if changed else body
