"""Transfer encodings: a part's Content-Transfer-Encoding (base64, quoted-printable).

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

_WHITESPACE = re.compile(rb"[ \t\r\n]+")
_BASE64_BODY = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


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
