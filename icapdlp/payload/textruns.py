"""Files written as text: base64, hex and percent-encoded runs in a body, or a whole encoded body.

A JSON body such as ``{"file": "AAAB..."}`` or an HTML page with
``src="data:application/dicom;base64,..."`` carries a whole file as text.
To the byte sniffers it is letters; to the receiver, one ``b64decode`` away
from a DICOM object. This module finds such runs, decodes them, and writes a
rewritten object back in the run's own layout (alphabet, padding, line
length and line end, JSON's ``\\/`` escape), so the text around it is
unchanged byte for byte.

What counts as a run:

- at least MIN_RUN_CHARS characters of the base64 alphabet, standard
  (``+/``) or URL-safe (``-_``); Node's decoder accepts both mixed, so a
  mixed run is decoded as one;
- broken into lines by real line ends (MIME, PEM) or by JSON's escaped ones
  (``\\n``, ``\\r\\n``), with ``/`` possibly escaped as ``\\/`` (JSON
  encoders such as PHP's do that);
- ending in at most two ``=``, and of a length some decoder accepts;
- read as hex when it is nothing but hex digit pairs (its base64 reading is
  checked too, as the other one a receiver might take).

Lenient decoders (Python's ``b64decode``, Java's MIME decoder) skip
whitespace, and JSON may write any character as ``\\uXXXX``; a run broken
up that way is not one run in the raw bytes. Two looks close that gap: a
body that is nothing but base64 once all whitespace is dropped is one run,
and the strings of a JSON body are checked after JSON unescaping
(``escaped_json_runs``); DICOM found only there cannot be rewritten in
place, so the walker refuses the body.

Percent-encoded runs (``curl --data-urlencode "file@scan.dcm"``, a
``data:`` URI without ``;base64``, base64 posted in a form) are stretches of
at least MIN_PERCENT_CHARS characters a form or URI value may hold, with at
least one ``%XX``; the decoded value is classified like any entity (so the
base64 inside a form value is found too). ``+`` is a space to a form decoder
and itself to a URI decoder, so a run holding ``+`` is classified both ways.

Base64 glued to other text (``"see attached:QUJD..."``, prose made of
letters before a block) is a run whose first characters are not the data's;
decoded from there it is garbage. Lenient decoders (Python's ``b64decode``)
skip every character outside the alphabet and read the rest of the text as one
stream, and a receiver that knows where the data starts cuts the words off.
Either way the data is one contiguous stretch of the text's alphabet
characters, read at one of four alignments: ``lenient_readings`` gives the four
decodings of a stretch's alphabet characters (and four more without ``-`` and
``_``, which a standard decoder skips as junk), so the walker can check them;
likewise hex at two alignments, and base64 padded piece by piece (read line by
line). Quoted-printable (``quoted_printable_reading``) and whole bodies in
base32, ascii85, base85 or uuencode (``rarer_encodings``) are read too. None of
these readings can be rewritten in place: DICOM found only there is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote_from_bytes, unquote_to_bytes

#: 64 characters hold 48 bytes: the smallest dataset with a patient's name, ID and birth date
#: (three implicit-VR elements of 16 bytes). Shorter runs (hashes, tokens, IDs) are left alone.
MIN_RUN_CHARS = 64
#: characters a run must have in one stretch somewhere; checked first on a mask of the body so
#: that text without such a stretch (prose, HTML) costs one translate and one find
_STRETCH = 16

_CHAR = rb"[A-Za-z0-9+/_-]"
_SEGMENT = rb"(?:" + _CHAR + rb"|\\/)" + _CHAR + rb"*(?:\\/" + _CHAR + rb"*)*"
_BREAKS = (b"\r\n", b"\n", b"\\r\\n", b"\\n")
_BREAK = rb"(?:\r?\n|\\r\\n|\\n)"
_FIRST_BREAKS = re.compile(_BREAK + rb"+")
_RUN = re.compile(_SEGMENT + rb"(?:" + _BREAK + rb"+" + _SEGMENT + rb")*={0,2}")
#: a percent-encoded run is at least this long (48 bytes of DICOM take at least 48 characters)
#: and holds at least one ``%XX``; shorter values (a word, a search term) are left alone
MIN_PERCENT_CHARS = 48
#: escapes among what form encoders leave as it is (WHATWG: alphanumerics, ``*-._``, ``+`` for a
#: space) and URI unreserved characters; ``,`` ``;`` ``/`` ``=`` ``&`` end a run, so the run of a
#: ``data:`` URI starts after its comma and a form value ends at the next field
_PERCENT_PLAIN = rb"[A-Za-z0-9*._~!'()+-]"
_PERCENT_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
_PERCENT_PLAIN_RUN = re.compile(_PERCENT_PLAIN + rb"*")
_PERCENT_PLAIN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*._~!'()+-")
#: JSON bodies above this are not parsed for escaped runs (json.loads holds several copies)
MAX_JSON_PARSE_BYTES = 64 * 1024 * 1024
_WHITESPACE_BYTES = b" \t\r\n\x0b\x0c"  # (deleted with bytes.translate: many times faster than a regex)
_WHITESPACE_TEXT = re.compile(r"[ \t\r\n\x0b\x0c]+")
#: a JSON string with a NUL or another control character that text does not hold is binary
_BINARY_TEXT = re.compile(r"[\x00-\x08\x0e-\x1f]")
_CONTROL_ESCAPE = re.compile(rb"\\u00[01][0-9A-Fa-f]")
#: control bytes (which text in any encoding lacks) in the first BINARY_SNIFF_BYTES of a preview
#: above which it is binary and the text checks are skipped (random bytes have about 50)
BINARY_SNIFF_BYTES, MAX_TEXT_CONTROL_BYTES = 512, 8
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
#: JSON escapes of control characters in a preview that make it worth reading whole
MIN_CONTROL_ESCAPES = 16
#: the 48 bytes of MIN_RUN_CHARS, as characters
MIN_BINARY_STRING = 48
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_ENCODED_TEXT = re.compile(rb"[A-Za-z0-9+/_=\- \t\r\n\x0b\x0c]+")
_JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*[\[{]")
#: bytes of a body masked at a time when looking for a stretch
MASK_WINDOW = 1024 * 1024
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]+")
_HEX_PAIRS = re.compile(rb"[ \t\r\n]*(?:[0-9A-Fa-f]{2}[ \t\r\n]*)+")
#: hex pairs separated by whitespace, as hexdump-style text starts (a partial pair may end it)
_HEX_START = re.compile(rb"[ \t\r\n]*(?:[0-9A-Fa-f]{2}[ \t\r\n]*)+[0-9A-Fa-f]?")
#: "a" for what a run may hold (its alphabet, line ends, the backslash of JSON escapes), so a run
#: wrapped at any width still shows a stretch
_MASK = bytes(0x61 if (0x41 <= i <= 0x5A or 0x61 <= i <= 0x7A or 0x30 <= i <= 0x39 or i in b"+/_-\r\n\\")
              else 0x20 for i in range(256))


@dataclass(frozen=True)
class Run:
    start: int
    end: int
    decoded: bytes
    kind: str = "base64"  # or "hex", "percent"
    #: the run's other reading, when receivers may read it two ways: a percent run holding "+"
    #: (a URI decoder keeps it), a hex run (its digits are base64 characters too)
    alternative: bytes | None = None

    def text(self, body: bytes) -> bytes:
        return body[self.start:self.end]

    def encode(self, data: bytes, body: bytes) -> bytes:
        """``data`` written in this run's own layout."""
        original = self.text(body)
        if self.kind == "hex":
            return _hex_like(data, original)
        return encode_like(data, original) if self.kind == "base64" else _percent_like(data, original)


def long_run_regions(body: bytes, stretches: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Where ``body`` holds MIN_RUN_CHARS run characters in a row (alphabet, line ends, escapes).

    Every base64 run, and every stretch a lenient reading of binary looks at,
    lies in one; computed once and handed to both. ``stretches``:
    :func:`stretch_regions` of ``body``, when the caller has them (the long
    ones are among them: no second pass over the body).
    """
    if stretches is not None:
        return [(start, end) for start, end in stretches if end - start >= MIN_RUN_CHARS]
    return list(_marked_regions(body, _MASK, MIN_RUN_CHARS))


def stretch_regions(body: bytes) -> list[tuple[int, int]]:
    """Where ``body`` holds _STRETCH run characters in a row: the pieces of a run broken up by other bytes.

    Random bytes hold none (a quarter of all bytes are run characters, so
    sixteen in a row come about once in 4 GiB); the search costs what the
    search for MIN_RUN_CHARS costs.
    """
    return list(_marked_regions(body, _MASK, _STRETCH))


def find_runs(body: bytes, regions: list[tuple[int, int]] | None = None) -> list[Run]:
    """Every base64 or percent-encoded run in ``body`` that decodes, in order, none overlapping.

    A base64-looking stretch inside a percent run is part of that run's value.
    ``regions``: :func:`long_run_regions` of ``body``, when the caller has them.
    """
    percent = _percent_runs(body)
    runs = list(percent)
    for match in _long_run_matches(body, long_run_regions(body) if regions is None else regions):
        if match.end() - match.start() < MIN_RUN_CHARS:
            continue
        if any(p.start <= match.start() < p.end for p in percent):
            continue
        start, end = _trim_to_wrapped_lines(body, match.start(), match.end())
        run = _alphabet_run(start, end, body[start:end])
        if run is not None and (start, end) != (match.start(), match.end()) and run.alternative is None:
            # the untrimmed reading, in case a receiver takes the whole stretch
            run = Run(run.start, run.end, run.decoded, run.kind, decode_run(match.group()))
        if run is not None:
            runs.append(run)
    return sorted(runs, key=lambda run: run.start)


def _long_run_matches(body: bytes, regions: list[tuple[int, int]]) -> Iterator[re.Match]:
    """``_RUN`` matches, looked for only where the mask shows MIN_RUN_CHARS run characters in a row.

    Every character a run holds (alphabet, line ends, JSON escapes) is "a" in
    the mask, so a run never crosses another byte but its closing ``=``; in
    binary, matching everywhere yielded one short match per letter.
    """
    for start, end in regions:
        yield from _RUN.finditer(body, start, min(len(body), end + 2))


def _marked_regions(body: bytes, table: bytes, length: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each stretch of at least ``length`` bytes that ``table`` marks "a" (else " ").

    Masked a window at a time, so a large body costs no second copy of itself;
    every stretch in a window is read from that window's mask (binary full of
    short strings has thousands).
    """
    needle = b"a" * length
    position = 0
    while position < len(body):
        window = body[position:position + MASK_WINDOW + length].translate(table)
        following = position + MASK_WINDOW
        found = window.find(needle)
        while found >= 0:
            gap = window.find(b" ", found + length)
            if gap < 0:  # (it runs on past the window)
                following = _marked_end(body, table, position + len(window))
                yield position + found, following
                break
            yield position + found, position + gap
            following = max(following, position + gap)
            found = window.find(needle, gap)
        position = following


def _marked_end(body: bytes, table: bytes, position: int) -> int:
    """The first byte at or after ``position`` that ``table`` does not mark (the body's end if none)."""
    while position < len(body):
        found = body[position:position + MASK_WINDOW].translate(table).find(b" ")
        if found >= 0:
            return position + found
        position += MASK_WINDOW
    return len(body)


def _marked_start(body: bytes, table: bytes, position: int) -> int:
    """The start of the marked stretch that holds ``position``."""
    while position > 0:
        low = max(0, position - MASK_WINDOW)
        found = body[low:position].translate(table).rfind(b" ")
        if found >= 0:
            return low + found + 1
        position = low
    return 0


def _trim_to_wrapped_lines(body: bytes, start: int, end: int) -> tuple[int, int]:
    """Drop a first or last line that does not fit the width of a wrapped run.

    A word on the line before a MIME or PEM block (``base64``, ``-----BEGIN
    CERTIFICATE-----``) is made of base64 characters too and would shift the
    whole decoding by its length; wrapped data has lines of one width, and
    only its last line may be shorter.
    """
    lines = [[start, end]]
    for brk in _FIRST_BREAKS.finditer(body, start, end):
        lines[-1][1] = brk.start()
        lines.append([brk.end(), end])
    if len(lines) < 2:
        return start, end

    def width(line: list[int]) -> int:  # in base64 characters: a JSON "\/" is one
        return line[1] - line[0] - body.count(b"\\/", line[0], line[1])

    widths = [width(line) for line in lines]
    if widths[-1] >= MIN_RUN_CHARS and widths[-1] > max(widths[:-1]):
        return lines[-1][0], end  # one long unwrapped line after words: the line is the data
    if len(lines) < 3:
        return start, end
    # wrapped data is the last block of lines of the commonest width (its own last line may be
    # shorter, a trailer may follow): words before it (a "base64" line, a PEM header, prose made
    # of letters) are dropped however many lines they take
    counts = Counter(widths[:-1])
    wrap = next(w for w in reversed(widths[:-1]) if counts[w] == max(counts.values()))  # ties: the later
    first = max(i for i, w in enumerate(widths) if w == wrap)
    while first > 0 and widths[first - 1] == wrap:
        first -= 1
    if first > 0:
        start = lines[first][0]
        lines = lines[first:]
    if len(lines) >= 3:
        last, rest = body[lines[-1][0]:lines[-1][1]], body[lines[0][0]:lines[-2][1]]
        if width(lines[-1]) > width(lines[-2]) or _other_alphabet(last, rest):
            end = lines[-2][1]  # a trailer such as "-----END" is not the data's last line
    return start, end


def _other_alphabet(line: bytes, rest: bytes) -> bool:
    """Whether ``line`` is not the data's: PEM armour (``-----END``) after lines without a dash, or
    one alphabet's characters after lines that clearly use the other (wrapped data keeps one)."""
    def uses(text: bytes, chars: bytes) -> bool:
        return any(c in text for c in (chars[:1], chars[1:]))
    if uses(rest, b"-_") == uses(rest, b"+/"):
        return line.startswith(b"-----") and not uses(rest, b"-_")
    return uses(line, b"+/") if uses(rest, b"-_") else uses(line, b"-_")


def _has_stretch(data: bytes) -> bool:
    """Whether ``data`` has _STRETCH run characters in a row; looked for a window at a time, so a
    large body costs no second copy of itself."""
    step = MASK_WINDOW
    return any(b"a" * _STRETCH in data[i:i + step + _STRETCH].translate(_MASK)
               for i in range(0, max(len(data), 1), step))


def _alphabet_run(start: int, end: int, text: bytes) -> Run | None:
    """A run of the base64 alphabet: hex if it is all hex digit pairs (base64 the other reading)."""
    chars = _alphabet_chars(text)
    as_base64 = decode_run(text)
    if len(chars) % 2 == 0 and _HEX_DIGITS.fullmatch(chars):
        return Run(start, end, bytes.fromhex(chars.decode("ascii")), "hex", as_base64)
    return None if as_base64 is None else Run(start, end, as_base64)


def _percent_runs(body: bytes) -> list[Run]:
    runs = []
    for start, end in _percent_spans(body):
        if end - start < MIN_PERCENT_CHARS:
            continue
        text = body[start:end]
        as_form = unquote_to_bytes(text.replace(b"+", b" "))
        as_uri = unquote_to_bytes(text)
        runs.append(Run(start, end, as_form, "percent", as_uri if as_uri != as_form else None))
    return runs


def _percent_spans(body: bytes) -> list[tuple[int, int]]:
    """(start, end) of every stretch of plain value characters holding at least one ``%XX``.

    Built from the escapes outwards (a C-speed search for ``%``), not by
    matching every word: random or binary bodies hold many short words.
    """
    if b"%" not in body:
        return []
    spans: list[list[int]] = []
    for match in _PERCENT_ESCAPE.finditer(body):
        if spans and _PERCENT_PLAIN_RUN.match(body, spans[-1][1]).end() >= match.start():
            spans[-1][1] = match.end()
        else:
            spans.append([match.start(), match.end()])
    out = []
    for start, end in spans:
        while start > 0 and body[start - 1] in _PERCENT_PLAIN_BYTES:
            start -= 1
        out.append((start, _PERCENT_PLAIN_RUN.match(body, end).end()))
    return out


def _hex_like(data: bytes, original: bytes) -> bytes:
    """``data`` as hex in the original's letter case, line length and line end (spaces dropped)."""
    digits = data.hex().encode("ascii")
    if re.search(rb"[A-F]", original) and not re.search(rb"[a-f]", original):
        digits = digits.upper()
    line_end, width = _layout(original)
    if width:
        digits = line_end.join(digits[i:i + width] for i in range(0, len(digits), width))
    return digits


def _percent_like(data: bytes, original: bytes) -> bytes:
    """Percent-encode ``data``, spaces as "+" when the original wrote them so."""
    text = quote_from_bytes(data, safe="").encode("ascii")
    return text.replace(b"%20", b"+") if b"+" in original and b"%20" not in original else text


def whole_body_run(body: bytes) -> Run | None:
    """A body that is nothing but hex or base64 once whitespace is dropped (as lenient decoders do).

    Hex pairs may be separated by whitespace (``bytes.fromhex`` and hexdump
    readers allow it).
    """
    if not _ENCODED_TEXT.fullmatch(body):
        return None  # (checked in place first: a binary body fails at once and is not copied)
    compact = body.translate(None, _WHITESPACE_BYTES)
    if len(compact) < MIN_RUN_CHARS or not _BASE64_TEXT.fullmatch(compact):
        return None
    start, end = len(body) - len(body.lstrip()), len(body.rstrip())
    if _HEX_PAIRS.fullmatch(body):
        return Run(start, end, bytes.fromhex(compact.decode("ascii")), "hex", decode_run(compact))
    decoded = decode_run(compact)
    return None if decoded is None else Run(start, end, decoded)


def escaped_json_runs(body: bytes, found: list[Run], *, text: bool = True) -> list[bytes]:
    """Payloads of a JSON body's strings that the raw bytes do not show as written.

    Base64 strings the raw scan (``found``) did not see whole (``\\u`` escapes,
    spaces), and strings holding control characters: binary written as
    ``\\u0000``-style escapes, which a receiver turns back into bytes with one
    ``encode("latin-1")``.
    """
    if len(body) > MAX_JSON_PARSE_BYTES or not _JSON_START.match(body):
        return escaped_binary_strings(body) if text else []  # (binary holds no JSON text)
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return escaped_binary_strings(body)
    seen = {_alphabet_chars(run.text(body)).rstrip(b"=") for run in found}
    decoded_runs = []
    for text in _strings(document):
        if len(text) >= MIN_BINARY_STRING and _BINARY_TEXT.search(text) and max(text) <= "\xff":
            decoded_runs.append(text.encode("latin-1"))
            continue
        compact = _WHITESPACE_TEXT.sub("", text)
        if len(compact) < MIN_RUN_CHARS or not compact.isascii():
            continue
        digits = compact.encode("ascii")
        base64_like = _BASE64_TEXT.fullmatch(digits) is not None
        for name in rarer_encodings(digits):  # base32, ascii85, base85 in a string: read as a body is
            if name.startswith("base32") or not base64_like:  # (base64 is base85's alphabet: not read twice)
                reading = decode_rarer(digits, name)
                if reading:
                    decoded_runs.append(reading)
        if not base64_like or digits.rstrip(b"=") in seen:
            continue
        decoded = decode_run(digits)
        if decoded is not None:
            decoded_runs.append(decoded)
    return decoded_runs


#: a JSON string literal: from a quote to the next unescaped quote (or the body's end, cut off)
_STRING_LITERAL = re.compile(rb'"((?:[^"\\]|\\.)*)(?:"|\\?$)')
#: the end of a literal a body's start cut off (a window of a larger body may start inside one, and
#: end inside it too)
_LITERAL_END = re.compile(rb'((?:[^"\\]|\\.)*)(?:"|\\?$)')


def escaped_binary_strings(body: bytes) -> list[bytes]:
    """Binary written as JSON string escapes (``\u0000``) in text that is no single JSON document.

    NDJSON (one document a line), JSONP (``cb({...});``), an XSSI prefix
    (``)]}',``), bytes after the value (``raw_decode``), or a window of a
    larger body: a receiver parses the part it knows and turns the string
    back into bytes with ``encode("latin-1")``. Looked for only in text
    holding MIN_CONTROL_ESCAPES control-character escapes (one count of the
    body otherwise); a literal cut off by the body's start or end is read
    as far as it goes.
    """
    if b"\\" not in body or body.count(b"\\u00") < MIN_CONTROL_ESCAPES:  # (a find of one byte: memchr)
        return []
    if len(_CONTROL_ESCAPE.findall(body)) < MIN_CONTROL_ESCAPES:
        return []
    # read once from a quote, once as if the body started inside a literal (the quotes pair the other way)
    literals = [match.group(1) for match in _STRING_LITERAL.finditer(body)]
    cut = _LITERAL_END.match(body)
    if cut is not None:
        literals += [cut.group(1)] + [match.group(1) for match in _STRING_LITERAL.finditer(body, cut.end())]
    found = []
    for literal in literals:
        if len(literal) < MIN_BINARY_STRING or not _CONTROL_ESCAPE.search(literal):
            continue
        text = _unescape(literal)
        if text is not None and _BINARY_TEXT.search(text) and max(text) <= "\xff":
            found.append(text.encode("latin-1"))
    return found


#: a partial escape a window may end in (``\u00``, ``\``), dropped before the literal is read
_PARTIAL_ESCAPE = re.compile(rb"\\(?:u[0-9A-Fa-f]{0,3})?$")


def _unescape(literal: bytes) -> str | None:
    """The string a JSON literal's inside stands for (a cut-off escape at its end dropped), or None."""
    literal = _PARTIAL_ESCAPE.sub(b"", literal)
    try:
        return json.loads(b'"' + literal + b'"')
    except ValueError:
        return None


#: a stretch of digits and separators long enough for MIN_BINARY_STRING numbers (one class, so the
#: search stays linear; the numbers in it are counted after)
#: (rows of a 2-D list ``], [``, whole floats ``16.0``, form values ``&``: numpy's ``tolist()``, a float
#: array, repeated form keys once their names are dropped)
_DECIMAL_STRETCH = re.compile(rb"[0-9][0-9, \t\r\n\[\].&]{%d,}" % (2 * MIN_BINARY_STRING - 2))
#: a number's integer part (``int(16.0)``; a fraction is dropped as ``int()`` drops it)
_DECIMAL_NUMBER = re.compile(rb"([0-9]+)(?:\.[0-9]*)?")
#: a form field's name and its ``=`` (``b=0&b=1``, PHP's ``b%5B%5D=0``): dropped, the values stay
_FORM_KEY = re.compile(rb"(?:^|&)[^&=]*=")


#: zero digits a text needs before its numbers are read as bytes: a file written as decimal values,
#: a hex dump or a C array shows one or two per zero byte, and DICOM holds many
MIN_ZERO_DIGITS = 32


def number_readings(body: bytes) -> list[bytes]:
    """Files written as numbers: decimal byte lists (32 zero digits or 48 commas first: a text
    file written so has no zero byte), hex dumps and C arrays (32 zero digits first: offsets and
    NUL bytes); the looks of each form follow only past these counts."""
    # (a find of one byte is memchr: text without a zero digit or a comma costs two of those)
    zeros = b"0" in body and body.count(b"0") >= MIN_ZERO_DIGITS
    readings = (decimal_byte_strings(body)
                if zeros or (b"," in body and body.count(b",") >= MIN_BINARY_STRING) else [])
    if zeros and b"=" in body and body.count(b"=") >= MIN_BINARY_STRING:  # a form: a field per byte
        readings += decimal_byte_strings(_FORM_KEY.sub(b"&", body))
    return readings + hex_dump_readings(body) if zeros else readings


def decimal_byte_strings(body: bytes) -> list[bytes]:
    """Files written as lists of decimal byte values: ``JSON.stringify`` of a Node Buffer
    (``{"type":"Buffer","data":[0,0,...]}``), ``json.dumps(list(data))``, a CSV line of bytes.

    A receiver turns the list back into the file with one ``bytes(...)`` or
    ``Buffer.from(...)``. Each stretch of at least MIN_BINARY_STRING numbers,
    all of them 0-255, is such a list (of any file: text written so too);
    nested lists are flattened, whole floats read as their integers, and a
    list of numbers up to 65535 is read as a ``Uint16Array`` (little-endian,
    as JavaScript and numpy on every common machine lay it out).
    """
    found = []
    for match in _DECIMAL_STRETCH.finditer(body):
        tokens = _DECIMAL_NUMBER.findall(match.group())
        if len(tokens) < MIN_BINARY_STRING or max(map(len, tokens)) > 5:
            continue  # (a long run of digits is no byte value, and int() refuses thousands of them)
        numbers = [int(token) for token in tokens]
        largest = max(numbers)
        if largest <= 255:
            found.append(bytes(numbers))
        elif largest <= 0xFFFF:
            found.append(struct.pack(f"<{len(numbers)}H", *numbers))
    return found


#: string-literal escapes of bytes (C, JavaScript, PHP, bash ``$'...'``, Python's ``b'...'`` repr):
#: ``\xNN``, octal ``\NNN``, ``\u00NN``, and the one-letter ones
_BYTE_ESCAPE = re.compile(rb"\\(?:x([0-9A-Fa-f]{2})|u00([0-9A-Fa-f]{2})|([0-7]{1,3})|(.))", re.S)
_LETTER_ESCAPES = {b"n": 10, b"r": 13, b"t": 9, b"0": 0, b"a": 7, b"b": 8, b"f": 12, b"v": 11, b"e": 27}
#: numeric escapes of one byte each (a file written so shows one per byte, text written so too)
_NUMERIC_ESCAPE = re.compile(rb"\\(?:x[0-9A-Fa-f]{2}|[0-7]{3}|u00[0-9A-Fa-f]{2})")
#: escapes of NUL (every DICOM element header holds several; Python's repr keeps other bytes as
#: they are and writes NUL as \x00) a text needs before it is read so, unless MIN_BINARY_STRING
#: numeric escapes of any byte stand in it
MIN_NUL_ESCAPES = 16
_NUL_ESCAPES = (b"\\x00", b"\\000", b"\\0\\", b"\\u0000")


def byte_escape_reading(body: bytes) -> bytes | None:
    """``body`` with string-literal byte escapes undone, when it holds binary written so; else None.

    ``codecs.escape_decode``, ``ast.literal_eval`` of a Python bytes repr, a
    JavaScript or C string, ``printf '%b'``: each turns ``\x00\x10...`` (or
    ``\000\020``) back into the file, whatever the text around it. Text
    without MIN_NUL_ESCAPES escaped NULs costs four counts.
    """
    if b"\\" not in body:  # (a find of one byte: memchr)
        return None
    if (sum(body.count(escape) for escape in _NUL_ESCAPES) < MIN_NUL_ESCAPES
            and len(_NUMERIC_ESCAPE.findall(body)) < MIN_BINARY_STRING):
        return None

    def byte(match: re.Match) -> bytes:
        hex_digits = match.group(1) or match.group(2)
        if hex_digits:
            return bytes([int(hex_digits, 16)])
        if match.group(3):
            return bytes([int(match.group(3), 8) & 0xFF])
        letter = match.group(4)
        return bytes([_LETTER_ESCAPES[letter]]) if letter in _LETTER_ESCAPES else letter

    return _BYTE_ESCAPE.sub(byte, body)


#: JavaScript's ``escape()`` and classic ASP write a character above 0x7F (and some below) as ``%uXXXX``
_PERCENT_U_ESCAPE = re.compile(rb"%u([0-9A-Fa-f]{4})")


def percent_u_reading(body: bytes) -> bytes | None:
    """``body`` with ``%uXXXX`` and ``%XX`` escapes undone, when it holds MIN_NUL_ESCAPES ``%u`` escapes.

    ``unescape()`` in JavaScript (and ASP's, IIS's) reads ``%u0000`` as a
    character; a receiver taking each character's code as a byte gets the
    file back. A percent run with ``%u`` in it is no run the percent reader
    decodes, so such a body is read whole. Text without the escapes costs
    one search.
    """
    if b"%" not in body or b"%u" not in body or len(_PERCENT_U_ESCAPE.findall(body)) < MIN_NUL_ESCAPES:
        return None

    def character(match: re.Match) -> bytes:
        code = int(match.group(1), 16)
        return bytes([code]) if code <= 0xFF else chr(code).encode("utf-8", "surrogatepass")

    return unquote_to_bytes(_PERCENT_U_ESCAPE.sub(character, body))


#: a hex dump line: an offset (``xxd``: ``00000010:``; ``hexdump -C``, ``od -Ax -tx1``: ``00000010``)
#: and the hex columns after it, up to the ASCII column (``|...|``, or two spaces in ``xxd``)
_DUMP_LINE = re.compile(rb"^[0-9A-Fa-f]{4,16}:?[ \t]+([0-9A-Fa-f]{2}(?:[0-9A-Fa-f ]|  (?=[0-9A-Fa-f]{2} ))*)", re.M)
_HEX_PAIR = re.compile(rb"[0-9A-Fa-f]{2}")
#: two zero bytes written so (every DICOM element header holds some): looked for first, one search
#: with a literal start, because the pairs' search retries at every token of text full of hex words
_SEPARATED_ZERO_PAIRS = re.compile(rb"00[\"']?[ \t]*[:,;-][ \t]*[\"']?00")
#: a C array of bytes (``xxd -i``): ``0x44, 0x49, ...``
_C_BYTE = re.compile(rb"0[xX]([0-9A-Fa-f]{1,2})\b")
MIN_DUMP_LINES = 4
#: hex pairs joined by one separator: ``bytes.fromhex(text.replace(":", ""))``, a split on commas,
#: a JSON array of two-digit hex strings (``["00","10",...]``)
_SEPARATED_HEX = (re.compile(rb"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[:,;-]){%d,}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
                             % (MIN_BINARY_STRING - 1)),
                  re.compile(rb"(?:[\"'][0-9A-Fa-f]{2}[\"'], ?){%d,}[\"'][0-9A-Fa-f]{2}[\"']" % (MIN_BINARY_STRING - 1)))


#: an Intel HEX data record (``:LLAAAA00`` then the data and a checksum) and a Motorola S-record
#: data record (``S1``/``S2``/``S3``, a count, a 2-, 3- or 4-byte address, the data, a checksum)
_INTEL_HEX_DATA = re.compile(rb"^:([0-9A-Fa-f]{2})[0-9A-Fa-f]{4}00([0-9A-Fa-f]*)", re.M)
_S_RECORD_DATA = re.compile(rb"^S([123])([0-9A-Fa-f]{2})([0-9A-Fa-f]*)", re.M)
#: a record's line start, looked for in the first _HEX_RECORD_LOOK bytes (objcopy writes a header
#: record, then data records from the first line on)
_HEX_RECORD_LINES = re.compile(rb"\n(?::[0-9A-Fa-f]{10}|S[123][0-9A-Fa-f]{8})")
_HEX_RECORD_LOOK = 4096


def hex_record_readings(body: bytes) -> list[bytes]:
    """The data of Intel HEX and S-record files (``objcopy -O ihex``/``srec``), records in written order.

    ``objcopy -I ihex -O binary`` (or any firmware tool) gives the file back;
    the address, type and checksum around each record's data shift the pairs
    for a reader of all hex digits. Text without MIN_DUMP_LINES lines
    starting ``:`` or ``S1``-``S3`` costs a few counts.
    """
    readings = []
    if len(_HEX_RECORD_LINES.findall(body[:_HEX_RECORD_LOOK])) < MIN_DUMP_LINES:
        return readings  # (a look at the start: a file written so is nothing but records)
    if body.count(b"\n:") >= MIN_DUMP_LINES:
        data = b"".join(match.group(2)[:2 * int(match.group(1), 16)]
                        for match in _INTEL_HEX_DATA.finditer(body))
        if len(data) >= 2 * MIN_BINARY_STRING:
            readings.append(bytes.fromhex(data[:len(data) // 2 * 2].decode("ascii")))
    if sum(body.count(b"\nS" + kind) for kind in (b"1", b"2", b"3")) >= MIN_DUMP_LINES:
        pieces = []
        for match in _S_RECORD_DATA.finditer(body):
            address_digits = 2 * (int(match.group(1)) + 1)
            pieces.append(match.group(3)[address_digits:2 * (int(match.group(2), 16) - 1)])
        data = b"".join(pieces)
        if len(data) >= 2 * MIN_BINARY_STRING:
            readings.append(bytes.fromhex(data[:len(data) // 2 * 2].decode("ascii")))
    return readings


def hex_dump_readings(body: bytes) -> list[bytes]:
    """The bytes of a hex dump (``xxd``, ``hexdump -C``, ``od -Ax -tx1``) or a C array (``xxd -i``).

    ``xxd -r`` and two-line scripts read these back; the offset column and
    the ASCII column shift the pairs for a reader of all hex digits. Dump
    offsets are zero-padded (``00000010``): text without MIN_DUMP_LINES lines
    starting so, and without MIN_BINARY_STRING ``0x`` bytes, costs two counts.
    """
    readings = []
    if body.count(b"\n000") >= MIN_DUMP_LINES:  # (offsets below 256 MiB, zero-padded, at line starts)
        pairs = b"".join(pair for line in _DUMP_LINE.findall(body) for pair in _HEX_PAIR.findall(line.replace(b" ", b"")))
        if len(pairs) >= 2 * MIN_BINARY_STRING:
            readings.append(bytes.fromhex(pairs.decode("ascii")))
    if body.count(b"0x") + body.count(b"0X") >= MIN_BINARY_STRING:
        values = _C_BYTE.findall(body)
        if len(values) >= MIN_BINARY_STRING:
            readings.append(bytes(int(value, 16) for value in values))
    readings += hex_record_readings(body)
    zero_pairs = _SEPARATED_ZERO_PAIRS.search(body) is not None
    matches = (match for pattern in _SEPARATED_HEX for match in pattern.finditer(body)) if zero_pairs else ()
    for match in matches:  # 00:10:..., 00,10,..., ["00", "10", ...] (openssl, MAC-address style, CSV, JSON)
        pairs = _HEX_PAIR.findall(match.group())
        if len(pairs) >= MIN_BINARY_STRING:
            readings.append(bytes.fromhex(b"".join(pairs).decode("ascii")))
    return readings


def _strings(document: Any) -> Iterator[str]:
    """Every string in a parsed JSON document, keys included, without recursion."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def may_hold_encoded(data: bytes, complete: bool) -> bool:
    """Whether a preview shows the start of a file written as text (the cheap look, no decoding).

    A run long enough, a run of some length running into the end of an
    incomplete preview, or hex pairs from the first byte (which
    ``whole_body_run`` decodes whole). A run that starts after the preview
    is not seen here: only reading the whole body finds it.
    """
    head = data[:BINARY_SNIFF_BYTES]
    if len(head) - len(head.translate(None, _CONTROL_BYTES)) > MAX_TEXT_CONTROL_BYTES:
        return False  # binary from the start (an image, a video, random bytes): not a text body
    if _HEX_START.fullmatch(data[:MIN_RUN_CHARS * 2]) and len(data.strip()) >= MIN_RUN_CHARS:
        return True
    if data.count(b"\\u00") >= MIN_CONTROL_ESCAPES:
        if len(_CONTROL_ESCAPE.findall(data)) >= MIN_CONTROL_ESCAPES:
            return True  # binary as JSON escapes of control characters (see escaped_json_runs)
    for start, end in _percent_spans(data):
        if end - start >= MIN_PERCENT_CHARS or (not complete and end == len(data)):
            return True
    if not _has_stretch(data):
        return False
    for match in _RUN.finditer(data):
        length = match.end() - match.start()
        if length >= MIN_RUN_CHARS or (not complete and match.end() == len(data) and length >= _STRETCH):
            return True
    return False


#: "a" for printable ASCII and white space, " " for anything else: where binary holds text
_ASCII_TEXT_MASK = bytes(0x61 if 0x20 <= i <= 0x7E or i in b"\t\n\r\x0b\x0c" else 0x20 for i in range(256))
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: bytes.translate tables: every other byte deleted; "-_" read as "+/" (both alphabets, as Node's
#: and the URL-safe decoders do) or deleted (as the standard one does, skipping them as junk)
_MIXED_TABLE = bytes.maketrans(b"-_", b"+/")
_NOT_MIXED = bytes(set(range(256)) - set(_ALPHABET + b"-_"))
_NOT_STANDARD = bytes(set(range(256)) - set(_ALPHABET))


def base64_characters(data: bytes) -> bytes:
    """The characters of ``data`` a decoder that skips everything else joins (either alphabet)."""
    return data.translate(None, _NOT_MIXED)
#: alignments a decoder can read a stretch at (base64 groups are four characters)
_ALIGNMENTS = range(4)


def lenient_readings(body: bytes, accounted: list[tuple[int, int]] = (), *, text: bool = True,
                     regions: list[tuple[int, int]] | None = None,
                     stretches: list[tuple[int, int]] | None = None, join: bool = True) -> Iterator[bytes]:
    """What a decoder that skips every non-alphabet character can read from the text in ``body``.

    For each stretch of text (the whole of a ``text`` body; in binary, the
    pieces of runs and the text around them, see :func:`_binary_stretches`),
    its base64 characters are taken in order, everything else skipped, and
    decoded at each of the four alignments: the data of a run glued to words
    before it (or broken up by any other character or byte) is aligned in one
    of them. ``accounted``: spans (runs already decoded and rewritten) left
    out of the stretch, unless, in binary, other pieces are joined to the run
    (the run is then part of something longer). A stretch with fewer than
    MIN_RUN_CHARS alphabet characters is skipped. ``stretches``:
    :func:`stretch_regions` of a binary ``body`` when the caller has them
    (``regions``, the long ones alone, is accepted as before and read as such).
    ``join=False``: binary pieces are read one by one (see the walker: a
    reading of a reading is garbage, and joining its pieces only makes more).
    """
    if text:
        readings_of = [_without(body, accounted)]
    else:
        if stretches is None:
            stretches = regions if regions is not None else stretch_regions(body)
        readings_of = _binary_stretches(body, stretches, accounted, join)
    for stretch in readings_of:
        mixed = stretch.translate(_MIXED_TABLE, _NOT_MIXED)
        if len(mixed) < MIN_RUN_CHARS:
            continue
        streams = [mixed]
        if (b"-" in stretch or b"_" in stretch) and next(_marked_regions(stretch, _MASK, MIN_RUN_CHARS), None):
            # junk inside a run: the standard decoder skips - and _ (identifiers and words have them)
            standard = stretch.translate(None, _NOT_STANDARD)
            if len(standard) >= MIN_RUN_CHARS:
                streams.append(standard)
        for stream in streams:
            for shift in _ALIGNMENTS:
                yield _lenient_decode(stream[shift:])
        if stretch.translate(_PADDING_MASK).count(b"a" * 8 + b"=") >= 2:
            padded = _padded_pieces(stretch)
            if padded is not None:
                yield padded
        hex_digits = _hex_stream(stretch)
        if hex_digits is not None:
            for shift in (0, 1):
                digits = hex_digits[shift:]
                yield binascii.unhexlify(digits[:len(digits) - len(digits) % 2])


def _lenient_decode(chars: bytes) -> bytes:
    if len(chars) % 4 == 1:
        chars = chars[:-1]  # (six bits make no byte)
    return binascii.a2b_base64(chars + b"=" * (-len(chars) % 4))  # a last partial group too


_NOT_MIXED_OR_PAD = bytes(set(_NOT_MIXED) - {ord("=")})
#: "a" for an alphabet character, "=" for itself: two pieces of base64 that end in padding show as
#: "aaaaaaaa=" (an HTML attribute name before its "=" is shorter)
_PADDING_MASK = bytes(0x61 if i in _ALPHABET + b"-_" else 0x3D if i == 0x3D else 0x20 for i in range(256))
_PADDING = re.compile(rb"=+")


def _padded_pieces(stretch: bytes) -> bytes | None:
    """The stretch as a decoder reads it that starts again after each padding (line by line, for one).

    Base64 of a file cut into pieces that are each padded (``=``) reads as
    one object only piece by piece: every piece is aligned at its own start,
    which the four alignments of the whole stream miss.
    """
    pieces = [p for p in _PADDING.split(stretch.translate(_MIXED_TABLE, _NOT_MIXED_OR_PAD)) if p]
    if sum(len(p) >= 2 for p in pieces) < 2:  # (a padded piece holds at least two characters)
        return None
    return b"".join(_lenient_decode(p) for p in pieces)


_HEX = b"0123456789ABCDEFabcdef"
_NOT_HEX = bytes(set(range(256)) - set(_HEX))
#: hex written as text: MIN_RUN_CHARS hex digits in a row, anywhere in a stretch
_HEX_MASK = bytes(0x61 if i in _HEX else 0x20 for i in range(256))


def _hex_stream(stretch: bytes) -> bytes | None:
    """The hex digits of a stretch that holds a hex run, everything else skipped; else None.

    Hex glued behind a word of hex letters (``cafe``, ``a``) is read one
    digit off from the run's start, so the run decodes to other bytes.
    """
    if next(_marked_regions(stretch, _HEX_MASK, MIN_RUN_CHARS), None) is None:
        return None
    return stretch.translate(None, _NOT_HEX)


#: "=00=" (a NUL escape followed by another escape) a body needs before its quoted-printable
#: reading is checked: every DICOM element header written so holds several (tags and lengths are
#: mostly NUL bytes); text has none, and random binary one in 4 GiB
MIN_QP_NUL_ESCAPES = 4
#: or "=3D" (an escaped "="): quoted-printable written as quoted-printable again (a part inside a
#: part) shows no "=00=" but one of these per escape; random binary has one in 16 MiB
MIN_QP_EQUALS_ESCAPES = 16


def quoted_printable_reading(body: bytes) -> bytes | None:
    """``body`` as a quoted-printable decoder reads it, when it holds binary written so; else None.

    Quoted-printable leaves printable bytes as they are, so an object written
    so shows its text values (a patient's name) to anyone, and a decoder
    (Python's ``quopri``, a mail client) turns the ``=XX`` escapes back into
    the file, whatever surrounds it. A body holding a part with
    ``Content-Transfer-Encoding: quoted-printable`` that no framing found (a
    multipart body glued behind other bytes) is read so.
    """
    if b"=" not in body:  # (memchr: text without one costs nothing more)
        return None
    if body.count(b"=00=") < MIN_QP_NUL_ESCAPES and not _holds_equals_escapes(body):
        return None
    return binascii.a2b_qp(body)


def _holds_equals_escapes(body: bytes) -> bool:
    """Whether ``body`` holds MIN_QP_EQUALS_ESCAPES of ``=3D`` or ``=3d``: one pass, not one per case."""
    seen, found = 0, body.find(b"=3")
    while found >= 0:
        if body[found + 2:found + 3] in (b"D", b"d"):
            seen += 1
            if seen == MIN_QP_EQUALS_ESCAPES:
                return True
        found = body.find(b"=3", found + 1)
    return False


#: the alphabets as their encoders write them, white space allowed (checked on the body as it is:
#: prose fails at its first comma). Python's b32decode wants capitals; ordinary text that spells
#: an alphabet (markup without punctuation, code) lacks one of the classes encoded binary shows.
_RARER_ALPHABETS = {
    "base32": re.compile(rb"[A-Z2-7\s]+=*\s*"),
    "base32 (lower case)": re.compile(rb"[a-z2-7\s]+=*\s*"),  # (``b32decode(casefold=True)``)
    "base32hex": re.compile(rb"[0-9A-V\s]+=*\s*"),
    "ascii85": re.compile(rb"\s*(?:<~)?[!-uz\s]+(?:~>)?\s*"),
    "base85": re.compile(rb"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~\s]+"),
}
#: character classes the output of base32 (the first two) and base85 (all four) of any binary holds
_CLASSES = tuple(re.compile(c) for c in (rb"[A-Z]", rb"[0-9]", rb"[a-z]", rb"[!-/:-@\[-`{-~]"))
#: the classes each encoding's output of any binary shows (base32hex: a letter past hex's F)
_CLASSES_OF = {"base32": _CLASSES[:2], "base32 (lower case)": (_CLASSES[2], re.compile(rb"[2-7]")),
               "base32hex": (_CLASSES[1], re.compile(rb"[G-V]")), "ascii85": _CLASSES, "base85": _CLASSES}
#: a uuencoded block as GNU uudecode and Python's email package find one: a line starting with
#: "begin" and an octal mode (any number of digits, any spacing, a name or none), then lines to an
#: "end" line or the text's end (a truncated block is decoded as far as it goes); the line after
#: it must be made of uuencode's characters, so prose ("begin 2 weeks from now") is no block
_UUENCODED = re.compile(rb"^[ \t]*(?i:begin)(?:-base64)?[ \t]+(?:0o)?[0-7]{1,7}\b[^\r\n]*\r?\n"
                        rb"(?=[ -`]{2,}\r?\n)"
                        rb"(.*?)(?:^[ \t]*(?i:end)\b|\Z)", re.S | re.M)
#: Adobe's ascii85 block anywhere in a text (a PDF or PostScript habit): its markers bound it
_ADOBE_ASCII85 = re.compile(rb"<~([!-uz\s]{%d,}?)~>" % MIN_RUN_CHARS)
#: uuencoded lines with no begin line (``binascii.a2b_uu`` line by line): two or more full lines
#: ("M" and 60 characters, anything after: the junk a broken encoder leaves is cut off by readers),
#: then the short last line; the leading newline and "M" are a literal the search scans for at C speed
_UU_HEADLESS = re.compile(rb"\n(M[ -`]{60}[^\n]*\n(?:M[ -`]{60}[^\n]*\n)+(?:[!-L][ -`]*[^\n]*\n?)?)")


def rarer_encodings(body: bytes) -> list[str]:
    """Which rarer text encodings Python's ``base64`` and ``binascii`` decode ``body`` is written in.

    Whole bodies in base32, ascii85 or base85, and uuencoded blocks between
    ``begin`` and ``end`` lines: icapdlp does not rewrite these, but a file in
    them must not pass unseen. Only the look (a fullmatch of the alphabet);
    :func:`decode_rarer` decodes, in pure Python and so slowly.
    """
    if len(body) < MIN_RUN_CHARS:
        return []
    names = [name for name, alphabet in _RARER_ALPHABETS.items() if alphabet.fullmatch(body)
             and all(c.search(body) for c in _CLASSES_OF[name])]
    if b"~" in body and b"<~" in body and _ADOBE_ASCII85.search(body):  # (memchr first: prose has no ~)
        names.append("ascii85 between <~ and ~>")
    if (b"egin" in body or b"EGIN" in body) and _UUENCODED.search(body):
        names.append("uuencode")
    elif b"M" in body and _UU_HEADLESS.search(b"\n" + body):
        names.append("uuencoded lines")
    return names


def decode_rarer(body: bytes, name: str) -> bytes | None:
    """``body`` decoded as ``name`` (one of :func:`rarer_encodings`), or None if it does not decode."""
    compact = body.translate(None, _WHITESPACE_BYTES)
    try:
        if name.startswith("base32"):
            compact = compact.rstrip(b"=") + b"=" * (-len(compact.rstrip(b"=")) % 8)
            return (base64.b32hexdecode(compact) if name == "base32hex"
                    else base64.b32decode(compact, casefold=True))
        if name == "ascii85":
            return base64.a85decode(compact, adobe=compact.startswith(b"<~"))
        if name == "base85":
            return base64.b85decode(compact)
    except ValueError:
        return None
    if name.startswith("ascii85 between"):
        try:
            return b"".join(base64.a85decode(b"<~" + block.group(1) + b"~>", adobe=True)
                            for block in _ADOBE_ASCII85.finditer(body))
        except ValueError:
            return None
    blocks = (_UUENCODED.finditer(body) if name == "uuencode" else _UU_HEADLESS.finditer(b"\n" + body))
    return b"".join(_a2b_uu_line(line) for block in blocks for line in block.group(1).splitlines())


def _a2b_uu_line(line: bytes) -> bytes:
    """One uuencoded line as readers decode it: whole, or cut to the length its first character
    gives (what Python's email package does with the junk a broken encoder leaves after it)."""
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        pass
    try:
        return binascii.a2b_uu(line[:(((line[0] - 32) & 63) * 4 + 5) // 3]) if line else b""
    except binascii.Error:
        return b""


#: a piece of a run (its padding too), and how far past the last long piece a shorter last one is
#: looked for (a run cut into pieces of N characters ends in a piece of fewer)
_ALPHABET_PIECE = re.compile(rb"[A-Za-z0-9+/_-]+=*")
MAX_PIECE_GAP = 256


def _alphabet_between(binary: bytes, start: int, end: int) -> bool:
    return bool(binary[start:end].translate(None, _NOT_MIXED))


def _without(body: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``body`` with the (start, end) ``spans`` cut out."""
    if not spans:
        return body
    pieces, position = [], 0
    for start, end in sorted(spans):
        pieces.append(body[position:start])
        position = max(position, end)
    return b"".join(pieces) + body[position:]


def _binary_stretches(binary: bytes, stretches: list[tuple[int, int]],
                      accounted: list[tuple[int, int]] = (), join: bool = True) -> Iterator[bytes]:
    """Where binary holds text a lenient decoder reads: pieces of runs, joined across junk, with their words.

    A file written as text inside binary (a member of a container icapdlp
    does not open) keeps its characters in order, though bytes may break it
    into pieces (a NUL or other bytes every few dozen characters): a decoder
    handed the region skips them. Pieces of at least _STRETCH run characters
    are joined while the bytes between them hold no alphabet character (the
    data is then one stream of characters), and the printable text around
    the ends (words glued before the run) is kept. Random bytes show no
    piece at all; symbol tables and strings are read, and decode to nothing.
    A run already rewritten (``accounted``) is cut out of a stretch that is
    that one piece; joined to others it is one part of a longer stream (a
    dataset whose first part alone decodes as one) and is read with them.
    """
    index = 0
    while index < len(stretches):
        start, end = stretches[index]
        first = index
        index += 1
        while join and index < len(stretches) and not _alphabet_between(binary, end, stretches[index][0]):
            end = stretches[index][1]
            index += 1
        if index - first == 1 and end - start < MIN_RUN_CHARS:
            continue  # (one short piece: an identifier, a word; a run broken up shows several)
        if join and index - first > 1:  # the last piece of a run cut every N characters is shorter
            last = _ALPHABET_PIECE.search(binary, end, min(end + MAX_PIECE_GAP, len(binary)))
            if last is not None and (index == len(stretches) or last.end() <= stretches[index][0]):
                end = last.end()
        start = _marked_start(binary, _ASCII_TEXT_MASK, start)
        end = _marked_end(binary, _ASCII_TEXT_MASK, end)
        if index - first > 1:
            yield binary[start:end]
        else:
            yield _without(binary[start:end], [(max(a, start) - start, min(b, end) - start)
                                               for a, b in accounted if a < end and b > start])


def _alphabet_chars(text: bytes) -> bytes:
    for line_end in _BREAKS:
        text = text.replace(line_end, b"")
    return text.replace(b"\\/", b"/").translate(None, _WHITESPACE_BYTES)


def decode_run(text: bytes) -> bytes | None:
    """The bytes a lenient decoder gets from ``text``, or None if it is not base64 after all."""
    digits = _alphabet_chars(text).rstrip(b"=")
    if len(digits) < MIN_RUN_CHARS or len(digits) % 4 == 1:
        return None
    standard = digits.replace(b"-", b"+").replace(b"_", b"/")
    try:
        return binascii.a2b_base64(standard + b"=" * (-len(standard) % 4), strict_mode=True)
    except binascii.Error:
        return None


def encode_like(data: bytes, original: bytes) -> bytes:
    """``data`` in base64 laid out as ``original`` was: alphabet, padding, escapes, line length and end."""
    chars = _alphabet_chars(original)
    text = binascii.b2a_base64(data, newline=False)
    if not chars.endswith(b"=") and len(chars) % 4:
        text = text.rstrip(b"=")  # the original left its padding out
    if (b"-" in chars or b"_" in chars) and not (b"+" in chars or b"/" in chars):
        text = text.replace(b"+", b"-").replace(b"/", b"_")
    line_end, width = _layout(original)
    if width:
        text = line_end.join(text[i:i + width] for i in range(0, len(text), width))
    if b"\\/" in original:
        text = text.replace(b"/", b"\\/")
    return text


def _layout(original: bytes) -> tuple[bytes, int]:
    """(line end, characters per line) of a wrapped run; (b"", 0) for one line.

    The line end is everything between the first line and the second (blank
    lines included), as the original wrote it.
    """
    match = _FIRST_BREAKS.search(original)
    if match is None:
        return b"", 0
    return match.group(), len(_alphabet_chars(original[:match.start()]))
