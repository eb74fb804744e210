"""Transfer encodings: a part's Content-Transfer-Encoding, and bodies written out as hex text.

A multipart part may declare ``Content-Transfer-Encoding: base64`` or
``quoted-printable`` (RFC 2045 §6); mail-style receivers (Python's ``email``
package, MIME libraries) undo it before handing the content on, so its
DICOM must be found in the decoded bytes and written back in the same
encoding. ``7bit``, ``8bit`` and ``binary`` mean the content is as it is.
Any other value, or two different ones, is refused: we cannot say what a
receiver would make of it.

Base64 is decoded as strictly as the most lenient receivers allow without
disagreeing among themselves: line breaks and spaces are skipped, missing
padding is added (Node and Java's MIME decoder accept that), and data after
the padding or characters outside the alphabet are refused, because Python
stops at the padding and skips strange characters while others fail.
"""

from __future__ import annotations

import binascii
import re

from icapdlp.verdict import BlockReason, Blocked

#: Content-Transfer-Encoding values meaning "no encoding" (RFC 2045 §6.1)
IDENTITY_TRANSFER = frozenset({"7bit", "8bit", "binary"})
#: values we undo and redo
SUPPORTED_TRANSFER = frozenset({"base64", "quoted-printable"})
#: RFC 2045 §6.8: encoded lines are at most 76 characters
BASE64_LINE = 76
#: hex bodies shorter than this (in digits) are not worth decoding: 48 bytes is the smallest
#: dataset with a patient's name, ID and birth date (three implicit-VR elements)
MIN_HEX_DIGITS = 96

_WHITESPACE = re.compile(rb"[ \t\r\n]+")
_BASE64_BODY = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_HEX_BODY = re.compile(rb"[ \t\r\n]*[0-9A-Fa-f]{2}(?:[ \t\r\n]*[0-9A-Fa-f]{2})*[ \t\r\n]*")


def transfer_encoding(headers: list[tuple[str, str]]) -> str | None:
    """The part's Content-Transfer-Encoding to undo (lower-cased), None for none; Blocked if unknown."""
    values = {value.strip().lower() for name, value in headers if name.lower() == "content-transfer-encoding"}
    values -= IDENTITY_TRANSFER
    if not values:
        return None
    if len(values) > 1:
        raise Blocked(BlockReason.UNINSPECTABLE, "a part declares two different transfer encodings")
    (value,) = values
    if value not in SUPPORTED_TRANSFER:
        raise Blocked(BlockReason.UNSUPPORTED_ENCODING,
                      "a part has a transfer encoding that is not supported")
    return value


def decode_transfer(content: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return decode_base64(content)
    return binascii.a2b_qp(content)


def encode_transfer(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return encode_base64_lines(data, BASE64_LINE, b"\r\n")
    # binary-safe (CR and LF encoded too); soft line breaks as CRLF, as in the rest of the body
    return binascii.b2a_qp(data, istext=False).replace(b"=\r\n", b"=\n").replace(b"=\n", b"=\r\n")


def decode_base64(text: bytes) -> bytes:
    """Standard-alphabet base64 with any line breaks and spaces; Blocked where decoders would differ."""
    compact = _WHITESPACE.sub(b"", text)
    if not _BASE64_BODY.fullmatch(compact):
        raise Blocked(BlockReason.UNINSPECTABLE, "base64 content with characters decoders treat differently")
    digits = compact.rstrip(b"=")
    if len(digits) % 4 == 1:
        raise Blocked(BlockReason.UNINSPECTABLE, "base64 content of an impossible length")
    return binascii.a2b_base64(digits + b"=" * (-len(digits) % 4), strict_mode=True)


def encode_base64_lines(data: bytes, line: int, newline: bytes) -> bytes:
    """Standard base64 with padding, broken into lines of ``line`` characters (0: one line)."""
    text = binascii.b2a_base64(data, newline=False)
    if line <= 0 or len(text) <= line:
        return text
    return newline.join(text[i:i + line] for i in range(0, len(text), line))


def hex_body(body: bytes) -> bool:
    """Whether the whole body is hex digits (pairs, optionally separated by whitespace), long enough."""
    return (len(body) >= MIN_HEX_DIGITS and _HEX_BODY.fullmatch(body) is not None
            and len(_WHITESPACE.sub(b"", body)) >= MIN_HEX_DIGITS)


def decode_hex(body: bytes) -> bytes:
    return bytes.fromhex(_WHITESPACE.sub(b"", body).decode("ascii"))


def encode_hex_like(data: bytes, original: bytes) -> bytes:
    """``data`` as hex in the original's letter case and line length (first line's), with its line end."""
    digits = data.hex()
    if re.search(rb"[A-F]", original) and not re.search(rb"[a-f]", original):
        digits = digits.upper()
    stripped = original.strip()
    newline = b"\r\n" if b"\r\n" in stripped else b"\n"
    first_line = stripped.split(newline, 1)[0]
    encoded = digits.encode("ascii")
    if newline in stripped and len(first_line) > 0 and b" " not in first_line:
        width = len(first_line)
        encoded = newline.join(encoded[i:i + width] for i in range(0, len(encoded), width))
    lead = original[:len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()):]
    return lead + encoded + trail
