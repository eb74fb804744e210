"""An HTTP client that talks to the origin through Squid, as a browser or uploader would.

Plain HTTP goes as an absolute-form request to the proxy (what curl -x does).
The ssl_bump tests use curl itself, since that is what users run.
"""

from __future__ import annotations

import gzip
import http.client
import io
import uuid
import zipfile
from dataclasses import dataclass

#: uploads through Squid and icapdlp include OCR and worker time
REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


def via_proxy(proxy_port: int, method: str, url: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> Reply:
    """Send one request through the proxy on 127.0.0.1 and read the whole answer."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def form_data(fields: list[tuple[str, str | None, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body from (name, filename, content type, bytes); returns (body, content type)."""
    boundary = f"----icapdlp-e2e-{uuid.uuid4().hex}"
    out = bytearray()
    for name, filename, content_type, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                f"Content-Type: {content_type}\r\n\r\n").encode("latin-1")
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode("latin-1")
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def stow_body(instances: list[bytes]) -> tuple[bytes, str]:
    """A STOW-RS request body: multipart/related of application/dicom parts."""
    boundary = f"icapdlp-stow-{uuid.uuid4().hex}"
    out = bytearray()
    for data in instances:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("latin-1") + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode("latin-1")
    return bytes(out), f'multipart/related; type="application/dicom"; boundary={boundary}'


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def decoded_body(headers: dict[str, str], body: bytes) -> bytes:
    """The body with a gzip Content-Encoding removed (whether or not icapdlp re-encoded it)."""
    if headers.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    return body
