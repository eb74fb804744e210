"""Seed inputs for fuzzing, all generated at run time from the synthetic generators.

Seeds are valid inputs of every shape each target understands, so mutations
start deep inside the parsers instead of being refused at the first byte.
Every DICOM seed carries planted PHI (``tests.support.synthetic``); nothing
here is real patient data and nothing binary is committed.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from functools import lru_cache

from tests.support import synthetic

BOUNDARY = "fuzzBoundary7Q"


@lru_cache(maxsize=1)
def dicom_seeds() -> tuple[tuple[str, bytes], ...]:
    """Small objects in every transfer syntax and form the pipeline accepts."""
    made = [
        ("ct-explicit", synthetic.make_ct(1).data),
        ("ct-implicit", synthetic.make_ct(2, transfer_syntax="implicit-le").data),
        ("ct-big-endian", synthetic.make_ct(3, transfer_syntax="explicit-be").data),
        ("ct-deflated", synthetic.make_ct(4, transfer_syntax="deflated").data),
        ("ct-bare", synthetic.make_ct(5, bare=True).data),
        ("ct-bare-implicit", synthetic.make_ct(6, bare=True, transfer_syntax="implicit-le").data),
        ("multiframe", synthetic.make_multiframe(7, frames=3, rows=8, columns=8).data),
        ("sequences", synthetic.make_large_sequences(8, items=20, rows=8, columns=8).data),
    ]
    return tuple(made)


def dicom_planted() -> dict[str, list[str]]:
    """Planted identifying strings per DICOM seed (to check none survives a rewrite)."""
    return _planted()


@lru_cache(maxsize=1)
def _planted() -> dict[str, list[str]]:
    objs = {
        "ct-explicit": synthetic.make_ct(1),
        "ct-implicit": synthetic.make_ct(2, transfer_syntax="implicit-le"),
        "ct-big-endian": synthetic.make_ct(3, transfer_syntax="explicit-be"),
        "ct-deflated": synthetic.make_ct(4, transfer_syntax="deflated"),
        "ct-bare": synthetic.make_ct(5, bare=True),
        "ct-bare-implicit": synthetic.make_ct(6, bare=True, transfer_syntax="implicit-le"),
        "multiframe": synthetic.make_multiframe(7, frames=3, rows=8, columns=8),
        "sequences": synthetic.make_large_sequences(8, items=20, rows=8, columns=8),
    }
    return {name: obj.phi_strings for name, obj in objs.items()}


def dicom_bytes() -> list[bytes]:
    return [data for _, data in dicom_seeds()]


# -- HTTP payloads --------------------------------------------------------------------

def form_data(parts: list[tuple[bytes, bytes]], boundary: str = BOUNDARY) -> bytes:
    out = []
    for headers, content in parts:
        out.append(b"--" + boundary.encode() + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(out)


def zip_of(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buf.getvalue()


def dicom_json() -> bytes:
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(synthetic.make_ct(9, rows=4, columns=4).data))
    del ds.PixelData
    return json.dumps([ds.to_json_dict()]).encode()


@lru_cache(maxsize=1)
def payload_seeds() -> tuple[tuple[str, str, tuple[str, ...], bytes], ...]:
    """(name, Content-Type, content codings, body) for the whole payload walk."""
    ct, ct2 = dicom_bytes()[0], dicom_bytes()[1]
    form = form_data([(b'Content-Disposition: form-data; name="note"', b"hello"),
                      (b'Content-Disposition: form-data; name="f"; filename="a.dcm"\r\n'
                       b"Content-Type: application/dicom", ct)])
    related = form_data([(b"Content-Type: application/dicom", ct), (b"Content-Type: application/dicom", ct2)])
    return (
        ("raw", "application/dicom", (), ct),
        ("octet", "application/octet-stream", (), ct2),
        ("form", f"multipart/form-data; boundary={BOUNDARY}", (), form),
        ("stow", f'multipart/related; type="application/dicom"; boundary={BOUNDARY}', (), related),
        ("zip", "application/zip", (), zip_of([("a/1.dcm", ct), ("DICOMDIR", b"x" * 10), ("b/2.dcm", ct2)])),
        ("zip-stored", "application/zip", (), zip_of([("1.dcm", ct)], zipfile.ZIP_STORED)),
        ("gzip-file", "application/gzip", (), gzip.compress(ct, mtime=0)),
        ("content-gzip", "application/dicom", ("gzip",), gzip.compress(ct, mtime=0)),
        ("content-deflate", "application/dicom", ("deflate",), zlib.compress(ct)),
        ("json", "application/dicom+json", (), dicom_json()),
        ("text", "text/plain", (), b"just text, not DICOM\n" * 20),
        ("html", "text/html", (), b"<html><body>hello</body></html>"),
    )


@lru_cache(maxsize=1)
def archive_seeds() -> tuple[bytes, ...]:
    ct = dicom_bytes()[0]
    from tests.payload import zipcraft

    one, two = zipcraft.pieces(zip_of([("a.dcm", ct), ("b.txt", b"text " * 100)]))
    return (
        zip_of([("a.dcm", ct), ("dir/", b""), ("b.txt", b"text " * 100)]),
        zip_of([("a.dcm", ct)], zipfile.ZIP_STORED),
        zip_of([(f"m{i}.bin", bytes([i]) * 300) for i in range(10)]),
        b"#!stub\n" * 8 + zip_of([("a.dcm", ct)]),  # behind a prefix
        zip_of([("a.dcm", ct)]) + zip_of([("b.txt", b"text")]),  # two end to end
        zipcraft.assemble([(one, True), (two, False)]),  # an entry the directory does not list
        zipcraft.assemble([(one, True), (two, True)], zip64_end=True),
        zipcraft.streamed_zip({"a.dcm": ct, "b.txt": b"text"}),  # data descriptors
    )


@lru_cache(maxsize=1)
def tar_seeds() -> tuple[bytes, ...]:
    import tarfile

    ct = dicom_bytes()[0]

    def tar_of(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as archive:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    return (
        tar_of([("README", b"text " * 1600), ("a/1.dcm", ct)]),
        tar_of([("d" * 120 + ".dcm", ct)], tarfile.GNU_FORMAT),
        tar_of([("1.dcm", ct)], tarfile.USTAR_FORMAT) + b"trailing",
    )


@lru_cache(maxsize=1)
def compressed_seeds() -> tuple[tuple[str, bytes], ...]:
    from icapdlp.payload.encoding import encode

    ct = dicom_bytes()[0]
    return (
        ("gzip", gzip.compress(ct, mtime=0)),
        ("gzip", gzip.compress(b"a" * 5000, mtime=0) + gzip.compress(b"b" * 10, mtime=0)),
        ("deflate", zlib.compress(ct)),
        ("deflate", zlib.compress(b"x" * 5000)[2:-4]),  # raw deflate, as some servers send
        *((coding, encode(ct, coding)) for coding in ("br", "zstd", "bzip2", "xz")),
        ("zstd", encode(b"a" * 5000, "zstd") + encode(b"b" * 10, "zstd")),  # two frames
    )


# -- ICAP transcripts -------------------------------------------------------------------

def chunked(body: bytes, sizes: tuple[int, ...] = (1024, 0xFBFF), *, ieof: bool = False) -> bytes:
    out, pos, i = [], 0, 0
    while pos < len(body):
        n = sizes[i % len(sizes)]
        out.append(b"%x\r\n%b\r\n" % (len(body[pos:pos + n]), body[pos:pos + n]))
        pos, i = pos + n, i + 1
    out.append(b"0; ieof\r\n\r\n" if ieof else b"0\r\n\r\n")
    return b"".join(out)


def icap_request(method: str, http_req: bytes | None, http_res: bytes | None, body: bytes | None, *,
                 preview: int | None = None, extra: bytes = b"") -> bytes:
    """One ICAP request with correct Encapsulated offsets (preview: the whole body if it fits)."""
    entities, offset, heads = [], 0, b""
    if http_req is not None:
        entities.append(f"req-hdr={offset}")
        heads += http_req
        offset += len(http_req)
    if http_res is not None:
        entities.append(f"res-hdr={offset}")
        heads += http_res
        offset += len(http_res)
    body_name = "res-body" if method == "RESPMOD" else "req-body"
    entities.append(f"{body_name}={offset}" if body is not None else f"null-body={offset}")
    head = (f"{method} icap://127.0.0.1:1344/deid-{'resp' if method == 'RESPMOD' else 'req'} ICAP/1.0\r\n"
            f"Host: 127.0.0.1:1344\r\nAllow: 204, trailers\r\n"
            f"Encapsulated: {', '.join(entities)}\r\n").encode()
    if preview is not None:
        head += b"Preview: %d\r\n" % preview
    head += extra + b"\r\n" + heads
    if body is None:
        return head
    if preview is not None and preview >= len(body):
        return head + chunked(body, ieof=True)
    if preview is not None:  # the preview, its plain last chunk, then (after 100 Continue) the rest
        first = b"%x\r\n%b\r\n" % (preview, body[:preview]) if preview else b""
        return head + first + b"0\r\n\r\n" + chunked(body[preview:])
    return head + chunked(body)


@lru_cache(maxsize=1)
def icap_seeds() -> tuple[bytes, ...]:
    """Valid transcripts as Squid 5.7 and c-icap-client send them (see FIELD-NOTES)."""
    dcm = dicom_bytes()[0][:3000]
    post = (b"POST /upload HTTP/1.1\r\nHost: pacs.example\r\nContent-Type: application/dicom\r\n"
            b"Content-Length: %d\r\n\r\n" % len(dcm))
    get = b"GET /studies/1 HTTP/1.1\r\nHost: pacs.example\r\n\r\n"
    res = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 10\r\n\r\n"
    return (
        b"OPTIONS icap://127.0.0.1:1344/deid-req ICAP/1.0\r\nHost: 127.0.0.1\r\nAllow: 206, trailers\r\n\r\n",
        b"OPTIONS icap://127.0.0.1/deid-req ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n",
        icap_request("REQMOD", post, None, dcm, preview=1024),
        icap_request("REQMOD", post, None, dcm, preview=0),
        icap_request("REQMOD", post, None, dcm),
        icap_request("REQMOD", get, None, None, preview=0),
        icap_request("RESPMOD", get, res, b"0123456789", preview=4096),
        icap_request("RESPMOD", None, res, b"x" * 2000, preview=1024)
        + icap_request("REQMOD", get, None, None),  # two requests on one connection
    )
