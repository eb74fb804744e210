"""multipart/* bodies (RFC 2046 §5.1) split into parts and joined back byte for byte.

A rewrite may change part *contents* only. Each delimiter line (with any
transport padding), each part's header block and the close delimiter are kept
as the exact bytes received, and an unchanged body rebuilds to identical bytes.
The preamble and the epilogue are the exception: receivers ignore them
(RFC 2046 §5.1.1) and nothing inspects them, so a *rewritten* body drops them
(the epilogue becomes one CRLF when there was one). Kept, they would let up to
MAX_PREAMBLE_BYTES of unchecked bytes - a fuzzing campaign put DICOM element
bytes with a planted name there - ride along with every de-identified upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from icapdlp.payload.media import MediaType, parse_media_type
from icapdlp.verdict import BlockReason, Blocked

#: RFC 2046 caps boundaries at 70 characters; we accept a little more from lax clients
MAX_BOUNDARY_CHARS = 200
#: text before the first and after the last delimiter, which receivers ignore; clients send
#: none or one line ("This is a multi-part message in MIME format."), so more is refused
#: rather than passed uninspected (a lost delimiter turns a whole part into preamble)
MAX_PREAMBLE_BYTES = 1024
#: one part's header block; real ones are a few hundred bytes
MAX_PART_HEADER_BYTES = 16 * 1024  # including the blank line that ends it

CRLF = b"\r\n"


@dataclass
class Part:
    """One body part: raw header block (ending with the blank line) and content."""

    delimiter: bytes  # CRLF (absent for the first part) + "--boundary" + padding + CRLF
    header_block: bytes
    content: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def media_type(self) -> MediaType:
        return parse_media_type(self.header("Content-Type"))

    @property
    def filename(self) -> str | None:
        disposition = self.header("Content-Disposition")
        if disposition is None or ";" not in disposition:
            return None
        # the disposition parameters have Content-Type's syntax: reuse that parser
        return parse_media_type("x/y;" + disposition.split(";", 1)[1]).param("filename")


@dataclass
class Multipart:
    preamble: bytes
    parts: list[Part]
    close_delimiter: bytes  # CRLF + "--boundary--"
    epilogue: bytes

    def to_bytes(self) -> bytes:
        """The body exactly as parsed (with any part contents replaced)."""
        return self._join(self.preamble, self.epilogue)

    def to_rewritten_bytes(self) -> bytes:
        """The body after a rewrite: preamble and epilogue, which nobody inspected, are left out.

        The body then starts with the first dash-boundary itself (the CRLF that
        ended the preamble goes with it), as most clients send it.
        """
        return self._join(b"", CRLF if self.epilogue else b"", strip_first_crlf=True)

    def _join(self, preamble: bytes, epilogue: bytes, strip_first_crlf: bool = False) -> bytes:
        pieces = [preamble]
        for index, part in enumerate(self.parts):
            delimiter = part.delimiter
            if index == 0 and strip_first_crlf and delimiter.startswith(CRLF):
                delimiter = delimiter[len(CRLF):]
            pieces += [delimiter, part.header_block, part.content]
        pieces += [self.close_delimiter, epilogue]
        return b"".join(pieces)


#: RFC 2046 bchars (a boundary may hold a space, but not at its end)
_BCHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
#: of those, what an unquoted value may hold and still be one token to Werkzeug, which stops at
#: the first other character (``boundary=a,b`` is "a" to it and "a,b" to a plain split)
_TOKEN_BCHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'+_-.")


def boundary_of(media: MediaType) -> str:
    """The boundary of a multipart type, when every receiver reads the same one; else Blocked.

    Content-Type parsers disagree on repeated parameters (we keep the first,
    Werkzeug the last), on RFC 2231 forms (``boundary*=``, ``boundary*0=``,
    which Werkzeug decodes and a plain parser ignores), and on where an
    unquoted value ends. A boundary we read differently from the receiver
    means we split the body on delimiters it does not see.
    """
    written = [value for name, value in media.raw_params if name == "boundary"]
    if any(name.startswith("boundary*") for name, _ in media.raw_params):
        raise _ambiguous("the boundary is given in RFC 2231 form")
    if len(written) != 1:
        raise _ambiguous("no boundary parameter" if not written else "the boundary parameter is repeated")
    value = written[0]
    quoted = len(value) >= 2 and value[0] == value[-1] == '"'
    boundary = value[1:-1] if quoted else value
    allowed = _BCHARS if quoted else _TOKEN_BCHARS
    if not boundary or boundary.endswith(" ") or not set(boundary.encode("utf-8", "replace")) <= allowed:
        raise _ambiguous("the boundary holds characters parsers read differently")
    return boundary


def _malformed(detail: str) -> Blocked:
    # A multipart body we cannot split may still carry DICOM: fail closed.
    return Blocked(BlockReason.UNPARSEABLE_DICOM, f"multipart body: {detail}")


def parse_multipart(body: bytes, boundary: str, max_parts: int) -> Multipart:
    """Split ``body``; raise Blocked for malformed framing or more than ``max_parts`` parts."""
    if not boundary or len(boundary) > MAX_BOUNDARY_CHARS:
        raise _malformed("boundary missing or too long")
    try:
        dash_boundary = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise _malformed("boundary is not ASCII") from None
    first = _find_delimiter(body, dash_boundary, 0, first=True)
    if first is None:
        raise _malformed("no delimiter line")
    start, after, is_close = first
    preamble = body[:start]
    parts: list[Part] = []
    while not is_close:
        line_start = start
        header_end = body.find(CRLF + CRLF, after, after + MAX_PART_HEADER_BYTES)  # block incl. blank line
        if after + 2 <= len(body) and body[after:after + 2] == CRLF:
            header_end = after - 2  # no header fields at all: the blank line follows at once
        if header_end < 0:
            raise _malformed("part header block missing or too long")
        next_line = body.find(CRLF + dash_boundary, after - 2 if after >= 2 else 0)
        if 0 <= next_line <= header_end + 2:
            # the blank line is missing: the "header block" would swallow content and delimiters
            raise _malformed("part header block runs into a delimiter line")
        header_block = body[after:header_end + 4]
        found = _find_delimiter(body, dash_boundary, header_end + 4, first=False)
        if found is None:
            raise _malformed("no close delimiter")
        start, next_after, is_close = found
        if len(parts) >= max_parts:
            raise Blocked(BlockReason.LIMIT_EXCEEDED, f"more than {max_parts} multipart parts")
        parts.append(Part(body[line_start:after], header_block, body[header_end + 4:start],
                          _parse_headers(header_block, strict=True)))
        after = next_after
    close_end = after
    epilogue = body[close_end:]
    _check_one_reading(preamble, parts, epilogue, dash_boundary)
    if len(preamble) > MAX_PREAMBLE_BYTES or len(epilogue) > MAX_PREAMBLE_BYTES:
        raise Blocked(BlockReason.LIMIT_EXCEEDED,
                      f"multipart preamble or epilogue above {MAX_PREAMBLE_BYTES} bytes")
    return Multipart(preamble, parts, body[start:close_end], epilogue)


def _ambiguous(detail: str) -> Blocked:
    return Blocked(BlockReason.UNINSPECTABLE,
                   f"multipart body another parser would split differently: {detail}")


def _check_one_reading(preamble: bytes, parts: list[Part], epilogue: bytes, dash_boundary: bytes) -> None:
    """Refuse a body that a lenient receiver would split into other parts than we did.

    We split on CRLF delimiters only (RFC 2046). Receivers are laxer, and
    whatever they find where we saw preamble, epilogue or the inside of a
    part is content we never inspected as such:

    - Werkzeug (Flask) ends lines with CRLF, LF or CR alone, accepts space,
      tab, VT and FF as padding after the boundary, and looks for the first
      delimiter anywhere in the preamble, even mid-line;
    - Python's ``email`` package and Go's ``mime/multipart`` also accept LF
      (``email`` also CR) line ends;
    - python-multipart is stricter than us (CRLF only, no padding), so what
      it reads is a coarser split of the same bytes;
    - ``email`` only sees a close delimiter that a line end (or the end of
      the body) follows.

    None of them compares the boundary case-insensitively, so case variants
    are ordinary content. Hence: no delimiter-like ``--boundary`` anywhere in
    the preamble or the epilogue (not even mid-line), and no line inside a
    part that is a delimiter under any of those line-end and padding rules.
    """
    if _delimiter_like(preamble, dash_boundary, line_start=False):
        raise _ambiguous("the preamble holds a delimiter")
    if _delimiter_like(epilogue, dash_boundary, line_start=False):
        raise _ambiguous("the epilogue holds a delimiter")
    if not _EPILOGUE_START.match(epilogue):
        # Python's email package does not see a close delimiter that a line end does not follow:
        # to it, the close line and the epilogue are content of the last part
        raise _ambiguous("the close delimiter is not followed by a line end")
    for part in parts:
        if _delimiter_like(part.content, dash_boundary, line_start=True):
            raise _ambiguous("a part holds a delimiter line with LF or CR line ends or other padding")


#: what may follow the close delimiter: padding, then a line end or nothing
_EPILOGUE_START = re.compile(rb"[ \t]*(?:\r\n|\n|\r|\Z)")
#: after ``--boundary``: the close marker, or padding (Werkzeug's: any ASCII space but CR and LF)
#: up to a line end or the end of the content (whose CRLF then starts our own delimiter)
_LENIENT_DELIMITER_TAIL = re.compile(rb"--|[ \t\x0b\x0c]*(?:[\r\n]|\Z)")


def _delimiter_like(data: bytes, dash_boundary: bytes, line_start: bool) -> bool:
    """Whether ``--boundary`` occurs in ``data`` as a lenient receiver's delimiter (at a line start)."""
    position = data.find(dash_boundary)
    while position >= 0:
        at_line_start = position == 0 or data[position - 1] in b"\r\n"
        tail = _LENIENT_DELIMITER_TAIL.match(data, position + len(dash_boundary))
        if tail and (at_line_start or not line_start):
            return True
        position = data.find(dash_boundary, position + 1)
    return False


def _find_delimiter(body: bytes, dash_boundary: bytes, pos: int, first: bool) -> tuple[int, int, bool] | None:
    """Next delimiter line at or after ``pos``: (start, end of line, is-close)."""
    while True:
        if first and pos == 0 and body.startswith(dash_boundary):
            hit, start = 0, 0
        else:
            hit = body.find(CRLF + dash_boundary, pos)
            if hit < 0:
                return None
            start = hit
            hit += 2
        cursor = hit + len(dash_boundary)
        if body[cursor:cursor + 2] == b"--":
            return start, cursor + 2, True
        line_end = cursor
        while line_end < len(body) and body[line_end] in b" \t":
            line_end += 1  # transport padding (RFC 2046 §5.1.1)
        if body[line_end:line_end + 2] == CRLF:
            return start, line_end + 2, False
        pos = hit  # the boundary was a prefix of something longer: keep looking
        first = False


def _parse_headers(block: bytes, strict: bool = False) -> list[tuple[str, str]]:
    """Header fields of a part; with ``strict``, any line that is not a field is malformed.

    Strictness matters: a line that is silently skipped is a place where
    content (a whole DICOM object) could ride past inspection.
    """
    headers: list[tuple[str, str]] = []
    for line in block.split(CRLF):
        if not line:
            continue
        if strict and _CONTROL.search(line):
            raise _malformed("control character in a part header")
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip().decode("latin-1"))
            continue
        name, sep, value = line.partition(b":")
        if sep and _TOKEN.fullmatch(name.strip()):
            headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
        elif strict:
            raise _malformed("part header block holds a line that is not a header field")
    return headers


#: bytes no client puts in a header line (HT is allowed); binary there is content in disguise
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
#: RFC 9110 token: what a header field name may consist of
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def replace_content(part: Part, content: bytes, dash_boundary: bytes) -> Part:
    """A copy of ``part`` with new content; part Content-Length fixed, Content-MD5 dropped.

    Raises Blocked if the new content would contain the delimiter (it would
    split the part on the way out).
    """
    # the header block ends in CRLF, so content starting with the dash-boundary collides too
    if CRLF + dash_boundary in content or content.startswith(dash_boundary):
        raise Blocked(BlockReason.INTERNAL_ERROR, "rewritten part contains the multipart boundary")
    header_block = part.header_block
    if part.header("Content-Length") is not None or part.header("Content-MD5") is not None:
        header_block = _fix_part_headers(header_block, len(content))
    return Part(part.delimiter, header_block, content, _parse_headers(header_block))


def _fix_part_headers(block: bytes, length: int) -> bytes:
    lines = block[:-4].split(CRLF) if block.endswith(CRLF + CRLF) else block.split(CRLF)
    out: list[bytes] = []
    for line in lines:
        name = line.partition(b":")[0].strip().lower()
        if name == b"content-md5":
            continue
        if name == b"content-length":
            line = line.partition(b":")[0] + b": " + str(length).encode()
        out.append(line)
    return CRLF.join(out) + CRLF + CRLF
