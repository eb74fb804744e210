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

import codecs
import json
import re
import zlib

#: the Part-10 magic; in a binary body at any offset it means a DICOM file rides inside
DICM = b"DICM"
#: zip records (local file header, central directory header, end of central directory,
#: zip64 end record): `unzip` and Java find an archive by these wherever it starts
ZIP_RECORDS = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")

#: archives whose own tools find them behind a prefix of any length (self-extracting style):
#: 7-Zip (7z, RAR, CAB), unrar and cabextract search a whole file for these signatures
SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"
RAR = b"Rar!\x1a\x07"
CAB = b"MSCF"

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
    (0, b"hsqs", "squashfs image"),
    (0, b"sqsh", "squashfs image"),
    (0, b"\x45\x3d\xcd\x28", "cramfs image"),
    (0, b"\x28\xcd\x3d\x45", "cramfs image"),
    (1024, b"\xe2\xe1\xf5\xe0", "EROFS image"),
    (0, b"\x31\x18\x10\x06", "UBIFS image"),
    (0, b"MSWIM\0\0\0", "WIM image"),
    (0, b"\xed\xab\xee\xdb", "RPM package"),
    (0, b"\x60\xea", "ARJ archive"),
    (2, b"-lh", "LHA archive"),
    (2, b"-lz", "LHA archive"),
    (0, b"ZOO ", "ZOO archive"),
    (0, b"\x89LZO\0\r\n\x1a\n", "lzop file"),
    (0, b"\x02\x21\x4c\x18", "LZ4 legacy frame"),
    (0, b"\x8c\x0d\x04", "PGP message"),  # a symmetric-key session packet (gpg --symmetric), old format
    (0, b"\xc3\x0d\x04", "PGP message"),  # ... new format
    (0, b"Salted__", "OpenSSL encrypted file"),
    (0, b"age-encryption.org/v1", "age encrypted file"),
)

#: ASCII armour of encrypted files: gpg and age find it after any text before it
ENCRYPTED_ARMOUR = ((b"-----BEGIN PGP MESSAGE-----", "PGP message"),
                    (b"-----BEGIN AGE ENCRYPTED FILE-----", "age encrypted file"))

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
    """(byte order mark, codec) of a body that is UTF-16 or UTF-32 text, or None (see :func:`wide_texts`)."""
    return next(iter(wide_texts(body)), None)


#: codecs tried on a body without a byte order mark whose first bytes show no NUL (non-ASCII
#: first characters: "Д" is 04 14 in UTF-16-LE); the longer unit first, as the marks are
_BOMLESS_CODECS = ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be")
#: bytes decoded first when guessing: random or binary bytes fail within them
_GUESS_BYTES = 4096


def wide_texts(body: bytes) -> list[tuple[bytes, str]]:
    """Every (byte order mark, codec) in which ``body`` is UTF-16 or UTF-32 text; most bodies: none.

    Python's ``json.loads`` reads a JSON body in any of the four, by its mark
    or by where the NULs of its first characters stand (``json.detect_encoding``,
    used here too), so a base64 file in a UTF-16 JSON upload reaches an API
    whose gateway saw only NULs between letters. A receiver told the charset
    (``text/plain; charset=utf-16le``) reads text whose first characters show
    no NUL at all (Cyrillic, CJK, "€"): without a mark, each wide codec in
    which the whole body is text is a reading (UTF-16 text of CJK characters
    may be text in both byte orders; base64 is ASCII in only one of them).
    Text means: it decodes, and holds no control character.
    """
    bom = next((bom for bom, _ in _WIDE_BOMS if body.startswith(bom)), b"")
    if bom:
        candidates = [next(codec for mark, codec in _WIDE_BOMS if mark == bom)]
    else:
        guess = json.detect_encoding(body[:4])
        candidates = [guess] if guess.startswith(("utf-16", "utf-32")) else list(_BOMLESS_CODECS)
    readings = []
    for codec in candidates:
        rest = body[len(bom):]
        if not bom and not _wide_start(rest, codec):
            continue  # (random and binary bytes stop here, at the cost of a few kilobytes)
        try:
            text = rest.decode(codec)
        except UnicodeDecodeError:
            continue
        if not _NON_TEXT.search(text.encode("utf-8", "surrogatepass")):
            readings.append((bom, codec))
    return readings


#: ASCII text every ASCII-compatible charset writes as itself (the base64, hex and JSON punctuation
#: the text walk reads): a declared charset that writes it otherwise hides them from that walk
_ASCII_PROBE = "{\"file\": \"AZaz09+/=\"}"


def declared_charset_text(charset: str | None, body: bytes) -> bytes | None:
    """``body`` as UTF-8 text when its declared ``charset`` does not write ASCII as ASCII; else None.

    A receiver told the charset (``application/json; charset=cp037``: a
    servlet's ``getReader()``, Java's IBM037 on a mainframe gateway) reads
    EBCDIC text whose bytes show no base64 and no JSON to a walk of the bytes.
    UTF-16 and UTF-32 are read by :func:`wide_texts` (also undeclared); an
    unknown charset is left to the bytes' own reading.
    """
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip('"'))
    except LookupError:
        return None
    if info.name.startswith(("utf-16", "utf-32")):
        return None
    try:
        if _ASCII_PROBE.encode(info.name) == _ASCII_PROBE.encode("ascii"):
            return None
    except UnicodeError:
        pass
    return body.decode(info.name, "replace").encode("utf-8", "surrogatepass")


def _wide_start(body: bytes, codec: str) -> bool:
    """Whether the first _GUESS_BYTES of ``body`` decode as text in ``codec`` (a cheap first look)."""
    unit = 4 if "32" in codec else 2
    if len(body) % unit:
        return False
    try:
        head = codecs.getincrementaldecoder(codec)().decode(body[:_GUESS_BYTES], final=False)
    except UnicodeDecodeError:
        return False
    return not _NON_TEXT.search(head.encode("utf-8", "surrogatepass"))


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


#: what is looked for at any offset of binary content, by three bytes that stand in it:
#: (kind, where the thing starts relative to them, the bytes that must stand there in full).
#: Compressed streams (gzip, bzip2, xz, zstd; their headers are checked by
#: ``encoding.body_compression``; a zstd file's leading skippable frame is not looked for, the
#: frame after it shows its own magic), tar headers (ustar by its magic; v7, which has none, by
#: the end of its checksum field as tar writers end it: an octal digit, a NUL, a space), zip
#: records, the DICOM marker, the archives whose own tools search a file for them (see
#: :func:`searched_archive`), and a uuencoded block's begin line.
ANCHORS: dict[bytes, tuple[str, int, bytes]] = {
    b"\x1f\x8b\x08": ("gzip", 0, b""), b"BZh": ("bzip2", 0, b""), b"7zX": ("xz", -1, b""),
    b"\x28\xb5\x2f": ("zstd", 0, b""),
    **{bytes([digit]) + b"\0 ": ("tar", -153, b"") for digit in b"01234567"},
    b"ust": ("ustar", -257, b"ustar"), b"DIC": ("dicm", 0, DICM),
    **{record[:3]: ("zip", 0, record) for record in ZIP_RECORDS},
    b"7z\xbc": ("7z", 0, SEVEN_ZIP), b"!\x1a\x07": ("rar", -3, b""), b"MSC": ("cab", 0, CAB),
    b"beg": ("uuencode", 0, b"begin"),  # (GNU uudecode finds a begin line among any bytes)
}
_CLASSES = [{anchor[i] for anchor in ANCHORS} for i in range(3)]
assert not (_CLASSES[0] & _CLASSES[1] or _CLASSES[0] & _CLASSES[2] or _CLASSES[1] & _CLASSES[2])
#: "A", "B", "C" for a byte that stands first, second, third in some anchor; "." for any other
_ANCHOR_MASK = bytes(next((0x41 + k for k in range(3) if i in _CLASSES[k]), 0x2E) for i in range(256))


def anchor_offsets(body: bytes) -> list[tuple[int, str]]:
    """(offset, kind) of every ANCHORS hit in ``body``: where such a thing may start, in the order found.

    One translate and one search over the body instead of one search per
    signature (each search of a body costs about as much as the translate);
    random bytes show about a hundred chance hits per MiB. The caller checks
    what stands at each offset; offsets before the body's start are left out.
    """
    masked = body.translate(_ANCHOR_MASK)
    offsets = []
    found = masked.find(b"ABC")
    while found >= 0:
        anchor = ANCHORS.get(body[found:found + 3])
        if anchor is not None and found + anchor[1] >= 0 and body.startswith(anchor[2], found):
            offsets.append((found + anchor[1], anchor[0]))
        found = masked.find(b"ABC", found + 1)
    return offsets


def searched_archive(body: bytes, anchors: list[tuple[int, str]]) -> str | None:
    """The name of an archive that its own tool finds in ``body`` behind other bytes, or None.

    7-Zip opens a 7z, RAR or CAB archive wherever it starts in a file (it
    reports the offset), as unrar and cabextract do: a self-extracting
    stub, an image or any bytes in front do not hide one. icapdlp cannot
    open these formats, so one anywhere in binary content is uninspectable.
    The checks after the signature are the tools' own, so the signature
    inside an ordinary file (an archiver's binary holds it as a constant)
    is no finding: a 7z start header's CRC, a cabinet's size and file
    offset (the reserved field may hold anything to cabextract). RAR's
    marker block is all unrar looks for. ``anchors``: :func:`anchor_offsets`
    of ``body``.
    """
    for offset, kind in anchors:
        if kind == "7z" and _seven_zip_header(body[offset:offset + 32]):
            return "7-Zip archive"
        if kind == "rar" and body.startswith(RAR, offset):
            return "RAR archive"
        if kind == "cab" and _cabinet_header(body[offset:offset + 20]):
            return "CAB archive"
    return None


def _seven_zip_header(header: bytes) -> bool:
    """A 7z signature header whose start-header CRC holds (7-Zip checks it before believing one)."""
    return len(header) == 32 and zlib.crc32(header[12:32]) == int.from_bytes(header[8:12], "little")


def _cabinet_header(header: bytes) -> bool:
    """A cabinet header cabextract or 7-Zip takes: its file entries start inside the cabinet's size."""
    if len(header) < 20:
        return False
    size, files = int.from_bytes(header[8:12], "little"), int.from_bytes(header[16:20], "little")
    return files <= size


def encrypted_armour(text: bytes) -> str | None:
    """The name of an encrypted file's ASCII armour anywhere in ``text``, or None.

    Its base64 decodes to ciphertext, which no look can tell from a DICOM
    file; whoever holds the key reads it.
    """
    if b"-----BEGIN " not in text:
        return None
    return next((name for armour, name in ENCRYPTED_ARMOUR if armour in text), None)


def uninspectable_format(body: bytes) -> str | None:
    """The name of a format at the start of ``body`` that icapdlp cannot open, or None."""
    for offset, magic, name in UNINSPECTABLE_MAGICS:
        if body[offset:offset + len(magic)] == magic:
            return name
    return None
