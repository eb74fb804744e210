"""One builder per wrapping: (content type, extra HTTP fields, body, planted objects).

Shared by the transcript tests and the benchmark so both send the same shapes
of traffic a gateway sees.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile

from icapdlp.payload.encoding import encode, inflate
from icapdlp.payload.media import parse_encodings
from tests.payload.helpers import form_body
from tests.support.synthetic import Synthetic, make_ct


def raw(seed: int = 1) -> tuple[str, list, bytes, list[Synthetic]]:
    obj = make_ct(seed)
    return "application/dicom", [], obj.data, [obj]


def form(seed: int = 2):
    obj = make_ct(seed)
    body = form_body("icapdlpFormB0undary", [
        (b'Content-Disposition: form-data; name="comment"', b"free text field"),
        (b'Content-Disposition: form-data; name="file"; filename="scan.dcm"\r\n'
         b"Content-Type: application/octet-stream", obj.data),
        (b'Content-Disposition: form-data; name="other"; filename="notes.txt"\r\nContent-Type: text/plain',
         b"not dicom at all\r\n"),
    ])
    return "multipart/form-data; boundary=icapdlpFormB0undary", [], body, [obj]


def related(seed: int = 3, count: int = 3):
    objs = [make_ct(seed, instance_number=i + 1) for i in range(count)]
    body = form_body("dicomwebB", [(b"Content-Type: application/dicom", o.data) for o in objs])
    return 'multipart/related; type="application/dicom"; boundary=dicomwebB', [], body, objs


def dicom_json(seed: int = 4):
    obj = make_ct(seed)
    body = json.dumps([obj.dataset.to_json_dict()]).encode()
    return "application/dicom+json", [], body, [obj]


def zipped(seed: int = 5):
    objs = [make_ct(seed, instance_number=i + 1) for i in range(2)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, obj in enumerate(objs):
            archive.writestr(f"STUDY/IM{i}", obj.data)
        archive.writestr("STUDY/DICOMDIR", objs[0].data)
        archive.writestr("README.txt", b"viewer instructions")
    return "application/zip", [], out.getvalue(), objs


def tarred(seed: int = 7):
    import tarfile

    objs = [make_ct(seed, instance_number=i + 1) for i in range(2)]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for i, data in enumerate([b"viewer instructions"] + [obj.data for obj in objs]):
            info = tarfile.TarInfo(f"STUDY/IM{i}" if i else "README.txt")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return "application/x-tar", [], out.getvalue(), objs


def gzipped(seed: int = 6):
    obj = make_ct(seed)
    return "application/dicom", [("Content-Encoding", "gzip")], gzip.compress(obj.data, mtime=0), [obj]


def gzip_spelled(seed: int = 7):
    """Issue 12's over-blocking case: GZIP in capitals and identity were refused as unsupported."""
    obj = make_ct(seed)
    coded = gzip.compress(obj.data, mtime=0)
    return "application/dicom", [("Content-Encoding", "GZIP, identity")], coded, [obj]


def brotli_as_jpeg(seed: int = 8):
    """Issue 12 item 4: a br download labelled image/jpeg went through with its DICOM."""
    obj = make_ct(seed)
    return "image/jpeg", [("Content-Encoding", "br")], encode(obj.data, "br"), [obj]


WRAPPINGS = {"raw": raw, "form": form, "related": related, "json": dicom_json, "zip": zipped, "gzip": gzipped,
             "gzip-spelled": gzip_spelled, "br-as-jpeg": brotli_as_jpeg}


def plain_body(content: bytes, content_type: str, coding: str | None) -> bytes:
    """The de-identified payload with its content codings undone (for PHI checks)."""
    for name in reversed(parse_encodings([coding] if coding else [])):
        content = inflate(content, name, 1 << 30)
    return content


def all_member_bytes(content_type: str, body: bytes) -> bytes:
    """For zips, the concatenated member contents (PHI checks must look inside the deflate)."""
    if content_type != "application/zip":
        return body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return b"".join(archive.read(n) for n in archive.namelist())
