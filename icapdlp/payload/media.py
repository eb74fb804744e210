"""Content-Type and Content-Encoding as the payload layer needs them.

Parsing is deliberately small and forgiving: a header we cannot read is not an
error here (the bytes are sniffed anyway), it only means the declared type
gives no hint. Parameter values are kept verbatim for rebuilding; lookups are
case-insensitive on names as RFC 9110 says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from icapdlp.payload.encoding import CODING_TOKENS

#: a Content-Type header longer than this is treated as absent (no real one comes close)
MAX_CONTENT_TYPE_CHARS = 4096


@dataclass(frozen=True)
class MediaType:
    """``type/subtype`` lower-cased, plus parameters (names lower-cased, values unquoted)."""

    essence: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def main(self) -> str:
        return self.essence.split("/", 1)[0]

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())


def parse_media_type(value: str | None) -> MediaType:
    """Parse a Content-Type value; unknown or malformed input gives an empty essence."""
    if not value or len(value) > MAX_CONTENT_TYPE_CHARS:
        return MediaType()
    pieces = _split_params(value)
    essence = pieces[0].strip().lower()
    if "/" not in essence or " " in essence:
        essence = ""
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, sep, raw = piece.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if name and name not in params:
            params[name] = raw
    return MediaType(essence, params)


def _split_params(value: str) -> list[str]:
    """Split on ``;`` outside double quotes."""
    if '"' not in value:
        return value.split(";")  # the common case, without the per-character walk
    out: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(char)
    out.append("".join(current))
    return out


def parse_encodings(values: list[str]) -> list[str]:
    """Content-Encoding codings in the order they were applied, lower-cased, aliases resolved, identity dropped.

    Tokens compare case-insensitively (RFC 9110 §8.4.1); the table of known
    ones is ``encoding.CODING_TOKENS``. Unknown tokens are kept (lower-cased)
    so the caller can refuse them by name.
    """
    codings: list[str] = []
    for value in values:
        for token in value.split(","):
            token = token.strip().lower()
            if not token:
                continue
            canonical = CODING_TOKENS.get(token, token)
            if canonical != "identity":
                codings.append(canonical)
    return codings


def is_dicom_type(media: MediaType) -> bool:
    return media.essence in ("application/dicom", "application/x-dicom")


def is_dicom_json_type(media: MediaType) -> bool:
    return media.essence == "application/dicom+json"


def is_zip_type(media: MediaType) -> bool:
    return media.essence in ("application/zip", "application/x-zip-compressed", "application/x-zip")


def is_multipart(media: MediaType) -> bool:
    return media.main == "multipart" and bool(media.param("boundary"))
