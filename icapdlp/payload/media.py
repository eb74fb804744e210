"""Content-Type and Content-Encoding as the payload layer needs them.

Parsing is deliberately small and forgiving: a header we cannot read is not an
error here (the bytes are sniffed anyway), it only means the declared type
gives no hint. Parameter values are kept verbatim for rebuilding; lookups are
case-insensitive on names as RFC 9110 says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from icapdlp.payload.encoding import CODING_TOKENS

#: Content-Type parameters past this many characters are not read (no real header comes close);
#: the type itself still is, so an over-long multipart header is refused for want of a boundary
MAX_CONTENT_TYPE_CHARS = 4096


@dataclass(frozen=True)
class MediaType:
    """``type/subtype`` lower-cased, plus parameters (names lower-cased, values unquoted).

    ``params`` keeps the first of repeated names; ``raw_params`` keeps every
    ``name=value`` as written (name lower-cased, value stripped but still
    quoted), for checks where another parser's reading matters (the
    multipart boundary).
    """

    essence: str = ""
    params: dict[str, str] = field(default_factory=dict)
    raw_params: tuple[tuple[str, str], ...] = ()

    @property
    def main(self) -> str:
        return self.essence.split("/", 1)[0]

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())


def parse_media_type(value: str | None) -> MediaType:
    """Parse a Content-Type value; unknown or malformed input gives an empty essence."""
    if not value:
        return MediaType()
    too_long = len(value) > MAX_CONTENT_TYPE_CHARS
    pieces = value.split(";", 1)[:1] if too_long else _split_params(value)
    essence = pieces[0].strip().lower()
    if "/" not in essence or " " in essence:
        essence = ""
    params: dict[str, str] = {}
    raw_params: list[tuple[str, str]] = []
    for piece in pieces[1:]:
        name, sep, written = piece.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        raw = written = written.strip()
        raw_params.append((name, written))
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if name and name not in params:
            params[name] = raw
    return MediaType(essence, params, tuple(raw_params))


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
    """Content-Encoding codings in the order applied, lower-cased, aliases resolved, identity dropped.

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


def is_tar_type(media: MediaType) -> bool:
    return media.essence in ("application/x-tar", "application/tar", "application/x-gtar",
                             "application/x-ustar")


def is_multipart(media: MediaType) -> bool:
    """Any multipart type, with or without a usable boundary (``multipart.boundary_of`` judges that)."""
    return media.main == "multipart"
