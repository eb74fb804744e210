"""What the raw bytes of a body say about it, wherever in the body they stand.

The walker passes a body as "not DICOM" only when it has accounted for all of
it. These are the facts it needs beyond the declared type: is the body text,
does a DICOM marker or a zip record stand anywhere in it, and does it start
with the magic number of a format icapdlp cannot open (which is then blocked
as uninspectable rather than passed as opaque bytes).

Every test here reads the whole body with ``bytes.find`` (memchr speed), so it
is cheap enough to run on every body, including on the event loop.
"""

from __future__ import annotations

import json
import re

#: the Part-10 magic; in a binary body at any offset it means a DICOM file rides inside
DICM = b"DICM"
#: zip records (local file header, central directory header, end of central directory,
#: zip64 end record): `unzip` and Java find an archive by these wherever it starts
ZIP_RECORDS = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")

#: formats that hold other files in a way icapdlp does not undo: blocked, never passed
UNINSPECTABLE_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (0, b"Rar!\x1a\x07", "RAR archive"),
    (0, b"MSCF\0\0\0\0", "CAB archive"),
    (0, b"\x04\x22\x4d\x18", "LZ4 frame"),
    (0, b"LZIP", "lzip stream"),
    (0, b"\x1f\x9d", "compress (.Z) stream"),
    (0, b"\x1f\xa0", "LZH stream"),
    (0, b"!<arch>\n", "ar archive"),
    (0, b"070701", "cpio archive"),
    (0, b"070702", "cpio archive"),
    (0, b"070707", "cpio archive"),
    (0, b"\xc7\x71", "cpio archive"),
    (0, b"xar!", "xar archive"),
    (0x8001, b"CD001", "ISO 9660 image"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE compound file"),
    (0, b"-----BEGIN PGP", "PGP message"),
    (0, b"\x85\x02", "PGP message"),
)

#: control characters that never occur in text a client means as text
_NON_TEXT = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_UTF8_BOM = b"\xef\xbb\xbf"


def is_text(body: bytes) -> bool:
    """True when ``body`` is UTF-8 text (an optional BOM) without NULs or other control bytes.

    Text cannot carry a binary DICOM file as it is: its element headers hold NUL
    bytes. So text needs looking at for *encoded* DICOM (JSON, XML, base64,
    url-encoded forms), and a "DICM" inside it is a word, not a file.
    """
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM):]
    if _NON_TEXT.search(body):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: byte order marks of the wide Unicode encodings (longest first: UTF-32 LE starts like UTF-16 LE)
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
              (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def wide_text(body: bytes) -> tuple[bytes, str] | None:
    """(byte order mark, codec) of a body that is UTF-16 or UTF-32 text, or None.

    Python's ``json.loads`` reads a JSON body in any of the four, by its mark
    or by where the NULs of its first characters stand (``json.detect_encoding``,
    used here too), so a base64 file in a UTF-16 JSON upload reaches an API
    whose gateway saw only NULs between letters. Text means: it decodes, and
    holds no control character.
    """
    bom, codec = next(((bom, codec) for bom, codec in _WIDE_BOMS if body.startswith(bom)), (b"", ""))
    if not bom:
        codec = json.detect_encoding(body[:4])
        if not codec.startswith(("utf-16", "utf-32")):
            return None
    try:
        text = body[len(bom):].decode(codec)
    except UnicodeDecodeError:
        return None
    if _NON_TEXT.search(text.encode("utf-8", "surrogatepass")):
        return None
    return bom, codec


def dicom_marker_offset(body: bytes) -> int | None:
    """Offset of the first "DICM" in ``body``, or None."""
    found = body.find(DICM)
    return None if found < 0 else found


def zip_record_offset(body: bytes) -> int | None:
    """Offset of the first zip record signature anywhere in ``body``, or None.

    One pass over the body for "PK" (about one hit per 64 KiB of random bytes),
    checking the two bytes after each hit, instead of one pass per record type.
    """
    found = body.find(b"PK")
    while found >= 0:
        if body[found:found + 4] in ZIP_RECORDS:
            return found
        found = body.find(b"PK", found + 1)
    return None


#: the first two bytes of what is looked for at any offset of binary content: compressed streams
#: (gzip, bzip2, xz, zstd, a zstd skippable frame from its second byte) and the end of a tar
#: header's checksum field as tar writers put it (six octal digits, a NUL, a space: the only mark
#: a v7 header, which has no magic, shows)
ANCHOR_PAIRS = frozenset({b"\x1f\x8b", b"BZ", b"\xfd7", b"\x28\xb5", b"\x2a\x4d", b"\0 "})
_FIRSTS = {pair[0] for pair in ANCHOR_PAIRS}
_SECONDS = {pair[1] for pair in ANCHOR_PAIRS}
assert not _FIRSTS & _SECONDS  # (one class per byte, so one search finds every pair)
#: "A" for a first byte, "B" for a second, "." for any other: every pair shows as "AB"
_ANCHOR_MASK = bytes(0x41 if i in _FIRSTS else 0x42 if i in _SECONDS else 0x2E for i in range(256))


def anchor_offsets(body: bytes) -> list[int]:
    """Offsets of every ANCHOR_PAIRS pair in ``body``, in order.

    One translate and one search over the body instead of one search per
    signature: each search of a body costs about as much as the translate.
    The caller checks what stands at each offset (most are chance pairs).
    """
    masked = body.translate(_ANCHOR_MASK)
    offsets = []
    found = masked.find(b"AB")
    while found >= 0:
        if body[found:found + 2] in ANCHOR_PAIRS:
            offsets.append(found)
        found = masked.find(b"AB", found + 1)
    return offsets


def uninspectable_format(body: bytes) -> str | None:
    """The name of a format at the start of ``body`` that icapdlp cannot open, or None."""
    for offset, magic, name in UNINSPECTABLE_MAGICS:
        if body[offset:offset + len(magic)] == magic:
            return name
    return None
