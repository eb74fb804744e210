"""Adversarial wrappings: planted PHI nested at random in containers, encodings and framings.

The generator takes a DICOM object with planted patient data (Part-10, a bare
dataset in either byte order, or the DICOM JSON model) and wraps it one to
four times in what HTTP receivers unpack: compressions as bodies or as
Content-Encoding (spelled as clients spell them), zip (behind a prefix, beside
an entry the central directory does not list, concatenated, under a
directory-like name), tar (after a README or a large first member), multipart
(CRLF or LF-only framing, base64 or quoted-printable parts, preambles),
base64 and hex bodies, JSON fields and data: URIs, url-encoded form fields, and
plain binary in front of it, opaque binary of any length around it, v7 tars,
base64 cut into pieces inside binary, and BOM-less UTF-16/32 text. The
declared type lies now and then.

The oracle does not trust icapdlp's view of the body: :func:`receiver_views`
undoes everything a lenient receiver could undo (all the above, found by
content, not by declaration) and the case is a finding when icapdlp neither
blocked the body nor removed every planted value from every such view.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import gzip
import io
import json
import lzma
import quopri
import random
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, quote_from_bytes

#: views the oracle looks at per case, at most (a bound on its own work)
MAX_VIEWS = 400
#: how deep the oracle unpacks
MAX_DEPTH = 8
#: bytes the oracle inflates per view at most
MAX_INFLATE = 64 * 1024 * 1024


@dataclass
class Case:
    body: bytes
    content_type: str | None
    codings: list[str]
    planted: list[bytes]
    steps: list[str] = field(default_factory=list)

    @property
    def shape(self) -> str:
        return ">".join(reversed(self.steps))


# -- the objects ------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _object(seed: int):
    from tests.support.synthetic import make_ct

    return make_ct(900 + seed, rows=32, columns=32)


def _core(rng: random.Random) -> tuple[bytes, str, list[bytes], str]:
    """(bytes, declared type, planted strings, name) of the innermost object."""
    import pydicom
    from pydicom.filebase import DicomBytesIO

    obj = _object(rng.randrange(4))
    planted = sorted({p.encode() for p in obj.planted if len(p) >= 8})
    kind = rng.choice(["part10", "part10", "bare-le", "bare-be", "json"])
    if kind == "part10":
        return obj.data, "application/dicom", planted, kind
    ds = pydicom.dcmread(DicomBytesIO(obj.data))
    if kind == "json":
        del ds.PixelData
        return json.dumps([ds.to_json_dict()]).encode(), "application/dicom+json", planted, kind
    del ds.file_meta
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = kind == "bare-le", kind == "bare-le"
    pydicom.filewriter.write_dataset(buffer, ds)
    return buffer.getvalue(), "application/octet-stream", planted, kind


# -- wrappers: (rng, inner bytes, inner type) -> (bytes, type) -----------------------------------

def _filler(rng: random.Random, size: int) -> bytes:
    """Bytes that hold no signature a check could trip on by accident."""
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz \n") for _ in range(size))


def _gzip(rng, inner, _):
    return gzip.compress(inner, mtime=0), rng.choice(["application/gzip", "application/octet-stream"])


def _bz2(rng, inner, _):
    return bz2.compress(inner), "application/x-bzip2"


def _xz(rng, inner, _):
    return lzma.compress(inner), "application/x-xz"


def _zstd(rng, inner, _):
    import zstandard

    return zstandard.ZstdCompressor().compress(inner), "application/zstd"


def _zip_bytes(members: list[tuple[str, bytes]], method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def _zip(rng, inner, _):
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    form = rng.choice(["plain", "prefix", "concat", "hidden-local", "dir-name", "second"])
    name = "dir/" if form == "dir-name" else rng.choice(["study/ct.dcm", "IMG0001", "a.txt"])
    if form == "second":
        return _zip_bytes([("README.txt", _filler(rng, 300)), (name, inner)], method), "application/zip"
    if form == "hidden-local":
        visible = _zip_bytes([("README.txt", _filler(rng, 50))], method)
        hidden = _zip_bytes([(name, inner)], method)
        local = hidden[:hidden.index(b"PK\x01\x02")]  # its local entry, without its directory
        cd = visible.index(b"PK\x01\x02")
        # the hidden entry sits between the visible entry and the directory; fix the directory offset
        data = visible[:cd] + local + visible[cd:]
        eocd = data.rindex(b"PK\x05\x06")
        offset = struct.unpack_from("<I", data, eocd + 16)[0] + len(local)
        return data[:eocd + 16] + struct.pack("<I", offset) + data[eocd + 20:], "application/zip"
    archive = _zip_bytes([(name, inner)], method)
    if form == "prefix":
        return _filler(rng, rng.choice([64, 5000])) + archive, "application/octet-stream"
    if form == "concat":
        return archive + _zip_bytes([("other.txt", _filler(rng, 80))], method), "application/zip"
    return archive, "application/zip"


def _tar(rng, inner, _):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=rng.choice([tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])) as tar:
        first = _filler(rng, rng.choice([8_000, 70_000]))
        for name, data in (("README", first), ("series/ct.dcm", inner)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue(), rng.choice(["application/x-tar", "application/octet-stream"])


def _multipart(rng, inner, inner_type):
    boundary = "b" + "".join(rng.choice("0123456789abcdef") for _ in range(12))
    eol = b"\n" if rng.random() < 0.3 else b"\r\n"
    cte = rng.choice([None, None, "base64", "quoted-printable"])
    content = inner
    headers = [b'Content-Disposition: form-data; name="file"; filename="x.dcm"']
    if rng.random() < 0.7:
        headers.append(b"Content-Type: " + (inner_type or "application/octet-stream").encode())
    if cte == "base64":
        content = base64.encodebytes(inner)
        headers.append(b"Content-Transfer-Encoding: base64")
    elif cte == "quoted-printable":
        content = quopri.encodestring(inner)
        headers.append(b"Content-Transfer-Encoding: quoted-printable")
    dash = b"--" + boundary.encode()
    note = dash + eol + b'Content-Disposition: form-data; name="note"' + eol + eol + b"hello" + eol
    body = note + dash + eol + eol.join(headers) + eol + eol + content + eol + dash + b"--" + eol
    if rng.random() < 0.2:
        body = b"preamble" + eol + body
    related = rng.random() < 0.3
    kind = f'multipart/related; type="application/dicom"; boundary={boundary}' if related else \
        f"multipart/form-data; boundary={boundary}"
    return body, kind


def _base64_body(rng, inner, _):
    encode = rng.choice([base64.b64encode, base64.encodebytes, base64.urlsafe_b64encode])
    return encode(inner), rng.choice(["text/plain", "application/base64", "application/octet-stream"])


def _hex_body(rng, inner, _):
    return binascii.hexlify(inner), "text/plain"


def _json_field(rng, inner, _):
    text = base64.b64encode(inner).decode()
    if rng.random() < 0.5:
        text = "data:application/dicom;base64," + text
    doc = {"name": "upload", "file": text} if rng.random() < 0.5 else {"files": [{"content": text}]}
    return json.dumps(doc).encode(), rng.choice(["application/json", "text/plain"])


def _urlencoded(rng, inner, _):
    return b"a=1&file=" + quote_from_bytes(inner, safe="").encode() + b"&z=2", \
        "application/x-www-form-urlencoded"


def _binary_prefix(rng, inner, _):
    return _filler(rng, rng.choice([100, 70_000])) + inner, "application/octet-stream"


#: opaque bytes with no base64, hex or signature character: what a binary framing puts around a field
_JUNK = bytes(b for b in range(256)
              if not (chr(b).isalnum() or chr(b) in "+/-_=%&\\") and b not in b"\x1f\x8b(*\xfd")


def _junk(rng: random.Random, size: int) -> bytes:
    return bytes(rng.choice(_JUNK) for _ in range(size))


def _junk_framed(rng, inner, _):
    prefix = _junk(rng, rng.choice([1, 37, 511, 513, 5000]))
    return prefix + inner + _junk(rng, rng.choice([0, 0, 60])), "application/octet-stream"


def _v7_tar(rng, inner, _):
    """A v7 tar (no "ustar" magic), as GNU tar --format=v7 writes its headers."""
    data, _type = _tar(rng, inner, _)
    body = bytearray(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        offsets = [member.offset for member in tar.getmembers()]
    for start in offsets:
        header = start
        body[header + 257:header + 512] = bytes(255)  # no magic, version, owner names, device, prefix
        checksum = sum(body[header:header + 148]) + 8 * 0x20 + sum(body[header + 156:header + 512])
        body[header + 148:header + 156] = b"%06o\0 " % checksum
    return bytes(body), "application/octet-stream"


def _base64_in_binary(rng, inner, _):
    """Base64 cut into pieces by junk bytes, between opaque bytes (a field of a binary format)."""
    text = base64.b64encode(inner)
    piece = rng.choice([16, 40, 100])
    region = b"".join(text[i:i + piece] + _junk(rng, rng.choice([1, 3])) for i in range(0, len(text), piece))
    return _junk(rng, 200) + region + _junk(rng, 200), "application/octet-stream"


def _wide_text(rng, inner, inner_type):
    """A base64 body (or JSON field) as UTF-16 or UTF-32 text without a byte order mark, non-ASCII first."""
    text = rng.choice(["Заключение: ", "日本語の報告 ", "€ "]) + base64.b64encode(inner).decode() + "\n"
    codec = rng.choice(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
    return text.encode(codec), rng.choice([f"text/plain; charset={codec}", "application/octet-stream"])


WRAPPERS: dict[str, Callable] = {
    "gzip": _gzip, "bz2": _bz2, "xz": _xz, "zstd": _zstd, "zip": _zip, "tar": _tar,
    "multipart": _multipart, "base64": _base64_body, "hex": _hex_body, "json-field": _json_field,
    "urlencoded": _urlencoded, "prefix": _binary_prefix, "junk-framed": _junk_framed, "v7-tar": _v7_tar,
    "base64-in-binary": _base64_in_binary, "wide-text": _wide_text,
}
#: Content-Encoding spellings (RFC 9110 tokens are case-insensitive; x-gzip is gzip)
CODINGS = {"gzip": ["gzip", "GZIP", "x-gzip"], "deflate": ["deflate"], "br": ["br"], "zstd": ["zstd"]}
LIES = ["image/jpeg", "text/plain", "application/octet-stream", None, "text/html"]


def _encode(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data, mtime=0)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        import brotli

        return brotli.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def generate(rng: random.Random) -> Case:
    """One random case: an object with planted values, wrapped 0-4 times, maybe content-coded."""
    body, content_type, planted, core = _core(rng)
    case = Case(body, content_type, [], planted, [core])
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
        name = rng.choice(list(WRAPPERS))
        try:
            case.body, case.content_type = WRAPPERS[name](rng, case.body, case.content_type)
        except ImportError:
            continue  # a codec library this environment lacks
        case.steps.append(name)
    if rng.random() < 0.3:
        for _ in range(rng.choice([1, 1, 2])):
            coding = rng.choice(list(CODINGS))
            try:
                case.body = _encode(coding, case.body)
            except ImportError:
                continue
            case.codings.append(rng.choice(CODINGS[coding]))
            case.steps.append(f"ce:{coding}")
    if rng.random() < 0.2 and not (case.content_type or "").startswith("multipart/"):
        case.content_type = rng.choice(LIES)
        case.steps.append("lie")
    return case


# -- the oracle: what a lenient receiver could get out of a body ------------------------------

def receiver_views(body: bytes, content_type: str | None = None, codings: list[str] | None = None) -> list[bytes]:
    """Every byte string a lenient receiver could unpack from ``body``, ``body`` included."""
    views: list[bytes] = []
    seen: set[int] = set()

    def add(data: bytes, depth: int, boundary: str | None = None) -> None:
        if len(views) >= MAX_VIEWS or depth > MAX_DEPTH or not data:
            return
        key = hash(data)
        if key in seen:
            return
        seen.add(key)
        views.append(data)
        for inner in _unpackings(data, boundary):
            add(inner, depth + 1)

    current = body
    for coding in reversed(codings or []):
        decoded = _undo_coding(coding.strip().lower(), current)
        if decoded is None:
            break
        add(current, 0)
        current = decoded
    match = re.search(r'boundary="?([^";]+)"?', content_type or "", re.I)
    add(current, 0, match.group(1) if match else None)
    return views


def surviving(planted: list[bytes], views: list[bytes]) -> list[bytes]:
    return [p for p in planted if any(p in view for view in views)]


def _undo_coding(coding: str, data: bytes) -> bytes | None:
    coding = {"x-gzip": "gzip"}.get(coding, coding)
    try:
        if coding == "gzip":
            return gzip.decompress(data)
        if coding == "deflate":
            try:
                return zlib.decompress(data)
            except zlib.error:
                return zlib.decompress(data, -15)
        if coding == "br":
            import brotli

            return brotli.decompress(data)
        if coding == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_INFLATE)
    except Exception:  # noqa: BLE001 - a receiver that fails to decode sees nothing more
        return None
    return None


def _unpackings(data: bytes, boundary: str | None) -> Iterator[bytes]:
    yield from _decompressions(data)
    yield from _zip_members(data)
    yield from _tar_members(data)
    yield from _multipart_parts(data, boundary)
    yield from _text_decodings(data)


def _decompressions(data: bytes) -> Iterator[bytes]:
    for magic, undo in ((b"\x1f\x8b", gzip.decompress), (b"BZh", bz2.decompress),
                        (b"\xfd7zXZ\x00", lzma.decompress), (b"(\xb5/\xfd", "zstd")):
        if data.startswith(magic):
            try:
                if undo == "zstd":
                    import zstandard

                    yield zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_INFLATE)
                else:
                    yield undo(data)
            except Exception:  # noqa: BLE001
                pass
    yield from _carved_streams(data)


def _carved_streams(data: bytes) -> Iterator[bytes]:
    """As a carving tool (or a receiver that knows where a stream starts): every magic past byte 0,
    decoded to the stream's end or its damage, whatever follows."""
    import zstandard

    openers = ((b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
               (b"BZh", bz2.BZ2Decompressor),
               (b"\xfd7zXZ\x00", lzma.LZMADecompressor), (b"(\xb5/\xfd", lambda: zstandard.ZstdDecompressor(
                   max_window_size=1 << 27).decompressobj()))
    for magic, opener in openers:
        found, tries = data.find(magic, 1), 0
        while found > 0 and tries < 16:
            tries += 1
            try:
                decoder = opener()
                out = decoder.decompress(data[found:found + MAX_INFLATE // 64])
                if len(out) >= 64:
                    yield out
            except Exception:  # noqa: BLE001 - damage ends what a carving tool writes out
                pass
            found = data.find(magic, found + 1)


def _zip_members(data: bytes) -> Iterator[bytes]:
    if b"PK\x03\x04" not in data:
        return
    try:  # as unzip: the central directory found from the end, a prefix allowed
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                yield archive.read(info)
    except Exception:  # noqa: BLE001
        pass
    # as Java's ZipInputStream: local entries in order, whatever the directory says
    pos = data.find(b"PK\x03\x04")
    while 0 <= pos and pos + 30 <= len(data):
        flags, method, _, _, _, csize, _, nlen, xlen = struct.unpack_from("<HHHHIIIHH", data, pos + 6)
        start = pos + 30 + nlen + xlen
        raw = data[start:start + csize] if not flags & 8 else data[start:]
        try:
            yield raw if method == 0 else zlib.decompressobj(-15).decompress(raw, MAX_INFLATE)
        except zlib.error:
            pass
        pos = data.find(b"PK\x03\x04", pos + 4)


def _tar_members(data: bytes) -> Iterator[bytes]:
    if len(data) < 512:
        return
    # a tar where it starts (by the magic, or a v7 checksum field's end), as a receiver that knows does
    starts = {0} if data[257:262] == b"ustar" else set()
    for magic, back in ((b"ustar", 257), (b"\0 ", 154)):
        found = data.find(magic, back)
        while found >= 0 and len(starts) < 8:
            if found - back >= 0 and (magic == b"ustar" or data[found - 6:found].isdigit()):
                starts.add(found - back)
            found = data.find(magic, found + 1)
    for start in sorted(starts):
        yield from _tar_at(data[start:])


def _tar_at(data: bytes) -> Iterator[bytes]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        yield handle.read()
    except Exception:  # noqa: BLE001
        pass


def _multipart_parts(data: bytes, boundary: str | None) -> Iterator[bytes]:
    candidates = {boundary} if boundary else set()
    first = re.match(rb"(?:[^\n]*\n)?--([^\r\n]{1,200})\r?\n", data)
    if first:
        candidates.add(first.group(1).decode("latin-1"))
    for name in filter(None, candidates):
        dash = re.escape(b"--" + name.encode("latin-1"))
        for chunk in re.split(rb"(?:^|\r?\n)" + dash + rb"(?:--)?[ \t]*(?:\r?\n|$)", data):
            head, sep, content = chunk.partition(b"\r\n\r\n")
            if not sep:
                head, sep, content = chunk.partition(b"\n\n")
            if not sep:
                continue
            yield content
            encoding = re.search(rb"content-transfer-encoding:\s*([\w-]+)", head, re.I)
            if encoding and encoding.group(1).lower() == b"base64":
                yield from _b64(content)
            elif encoding and encoding.group(1).lower() == b"quoted-printable":
                yield quopri.decodestring(content)


def _b64(text: bytes) -> Iterator[bytes]:
    cleaned = re.sub(rb"\s+", b"", text)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            yield decode(cleaned + b"=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            pass


def _text_decodings(data: bytes) -> Iterator[bytes]:
    if b"\0" in data[:4096] or not data.isascii():
        yield from _wide_decodings(data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            yield from _skipping_decodings(data)
    if b"\0" in data[:4096]:
        return
    stripped = data.strip()
    if re.fullmatch(rb"[0-9a-fA-F\s]+", stripped) and len(stripped) >= 64:
        try:
            yield binascii.unhexlify(re.sub(rb"\s+", b"", stripped))
        except (binascii.Error, ValueError):
            pass
    if re.fullmatch(rb"[A-Za-z0-9+/_\-=\s]+", stripped) and len(stripped) >= 64:
        yield from _b64(stripped)  # a whole base64 body, line breaks and all
    for run in re.findall(rb"[A-Za-z0-9+/_\-]{64,}={0,2}", data):
        yield from _b64(run)
    if b"=" in data and b"&" in data:
        try:
            for _, value in parse_qsl(data.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
                if len(value) >= 64:
                    yield value.encode("latin-1")
        except ValueError:
            pass
    if data[:1] in (b"{", b"[") or data.startswith(b"\xef\xbb\xbf"):
        try:
            document = json.loads(data.decode("utf-8-sig"))
        except ValueError:
            return
        for text in _json_strings(document):
            if len(text) >= 64:
                yield text.encode("utf-8")
                if text.startswith("data:") and "," in text:
                    yield from _b64(text.split(",", 1)[1].encode())


def _wide_decodings(data: bytes) -> Iterator[bytes]:
    """Text in a wide codec a receiver is told (a charset parameter), as UTF-8."""
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if not re.search(r"[\x00-\x08\x0e-\x1f]", text) and re.search(r"[A-Za-z0-9+/]{64}", text):
            yield text.encode("utf-8", "surrogatepass")  # (text with a run only: garbage spawns garbage)


def _skipping_decodings(data: bytes) -> Iterator[bytes]:
    """Python's b64decode of binary: every byte outside the alphabet skipped, at each alignment."""
    if not re.search(rb"[A-Za-z0-9+/]{16}", data):
        return  # (decoded garbage, random bytes: reading them spawns only more garbage)
    chars = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(chars) < 64:
        return
    for shift in range(4):
        part = chars[shift:]
        part = part[:len(part) - 1] if len(part) % 4 == 1 else part  # (six bits make no byte)
        try:
            yield base64.b64decode(part + b"=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            pass
    for run in re.findall(rb"[0-9a-fA-F]{64,}", data):  # hex written into binary
        for shift in (0, 1):
            digits = run[shift:]
            yield binascii.unhexlify(digits[:len(digits) - len(digits) % 2])


def _json_strings(node) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# -- one case through the product -------------------------------------------------------------

def outcome(case: Case) -> tuple[str, list[bytes]]:
    """("blind" | "blocked:<reason>" | "clean" | "phi-survived", surviving planted values).

    "blind": the oracle itself finds no planted value in the generated body (a
    wrapping no receiver undoes, such as hex behind an opaque prefix):
    not a test of icapdlp, counted apart.
    """
    from icapdlp.verdict import Blocked
    from tests.fuzz.targets import payload_body

    if not surviving(case.planted, receiver_views(case.body, case.content_type, case.codings)):
        return "blind", []
    try:
        result = payload_body(case.content_type, tuple(case.codings), case.body)
    except Blocked as blocked:
        return f"blocked:{blocked.reason.value}", []
    out = result.data if result.changed else case.body
    left = surviving(case.planted, receiver_views(out, case.content_type, case.codings))
    return ("phi-survived" if left else "clean"), left
