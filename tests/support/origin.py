"""A small origin server for end-to-end tests: records exactly what reached it.

End-to-end tests judge the proxy chain by its effect on the far side: what
the origin stored after Squid and icapdlp handled an upload, and what a client
received for a download. So this server keeps every request body byte for
byte (chunked transfer decoded, content encodings left as they arrived) and
splits multipart bodies into their parts, without interpreting DICOM itself.

Endpoints (a DICOMweb-like subset plus generic uploads and downloads):

- ``POST /studies``: STOW-RS; a ``multipart/related`` body, every part stored.
- ``GET /studies/<id>``: WADO-RS; the instances registered with
  :meth:`OriginServer.add_study` as ``multipart/related; type="application/dicom"``.
- ``POST /form``: ``multipart/form-data`` form upload, every part stored.
- ``POST|PUT /raw/<name>``: any body, stored as is.
- ``GET /blob/<name>``: bytes registered with :meth:`OriginServer.add_blob`.

Runs in threads of the test process on 127.0.0.1 (optionally TLS), port 0.
"""

from __future__ import annotations

import io
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: a test origin never needs more; a runaway client cannot exhaust memory
MAX_BODY_BYTES = 512 * 1024 * 1024
#: WADO-RS and STOW-RS responses carry this boundary so tests can split them
WADO_BOUNDARY = "icapdlp-test-origin-boundary"


@dataclass(frozen=True)
class Part:
    """One part of a multipart body: its header fields and its bytes."""

    headers: dict[str, str]
    data: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True)
class Received:
    """One request exactly as the origin saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names; the last value wins
    body: bytes
    parts: tuple[Part, ...] = ()


def boundary_of(content_type: str) -> str | None:
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return match.group(1) if match else None


def split_multipart(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart body (RFC 2046) into parts; tolerant of a missing preamble."""
    delimiter = b"--" + boundary.encode("latin-1")
    parts: list[Part] = []
    segments = body.split(delimiter)
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break  # close delimiter
        if segment.startswith(b"\r\n"):
            segment = segment[2:]
        head, sep, data = segment.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n"):
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, data))
    return parts


def stow_response(parts: tuple[Part, ...], retrieve_url: str) -> bytes:
    """A STOW-RS Store Instances Response (PS3.18 10.5.3) as DICOM JSON.

    Lists the SOP Class / Instance UIDs of the stored parts, as a real
    DICOMweb server answers; that response is itself DICOM (application/dicom+json)
    and so crosses icapdlp's RESPMOD service on its way back.
    """
    import pydicom  # test dependency; imported here so the module loads without it

    referenced = []
    for part in parts:
        try:
            ds = pydicom.dcmread(io.BytesIO(part.data), stop_before_pixels=True)
            referenced.append({"00081150": {"vr": "UI", "Value": [str(ds.SOPClassUID)]},
                               "00081155": {"vr": "UI", "Value": [str(ds.SOPInstanceUID)]}})
        except Exception:  # noqa: BLE001 - a part the origin cannot read is simply not listed
            continue
    answer = {"00081190": {"vr": "UR", "Value": [retrieve_url]},
              "00081199": {"vr": "SQ", "Value": referenced}}
    return json.dumps(answer).encode()


def build_multipart(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    """A multipart body from (content type, bytes) pairs."""
    out = bytearray()
    for content_type, data in parts:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1")
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode("latin-1")
    return bytes(out)


class OriginServer:
    """Threaded HTTP(S) origin on 127.0.0.1 that records every request."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._blobs: dict[str, tuple[str, bytes]] = {}
        self._studies: dict[str, list[bytes]] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="test-origin", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def start(self) -> "OriginServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- what tests register and read -------------------------------------

    def add_blob(self, name: str, data: bytes, content_type: str = "application/octet-stream",
                 content_encoding: str | None = None) -> str:
        with self._lock:
            self._blobs[name] = (content_type, data, content_encoding)
        return f"/blob/{name}"

    def add_study(self, instances: list[bytes]) -> str:
        study = uuid.uuid4().hex
        with self._lock:
            self._studies[study] = list(instances)
        return f"/studies/{study}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def wait_received(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """The recorded requests once at least ``count`` arrived (or what arrived by the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            time.sleep(0.02)
        return self.received()

    def _record(self, item: Received) -> None:
        with self._lock:
            self._received.append(item)

    def _blob(self, name: str) -> tuple[str, bytes, str | None] | None:
        with self._lock:
            return self._blobs.get(name)

    def _study(self, study: str) -> list[bytes] | None:
        with self._lock:
            return self._studies.get(study)


def _handler_for(origin: OriginServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_OriginHandler):
        server_origin = origin

    return Handler


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_origin: OriginServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                if len(out) + size > MAX_BODY_BYTES:
                    raise ValueError("body too large for the test origin")
                out += self.rfile.read(size)
                self.rfile.readline(16)
        length = int(self.headers.get("Content-Length", "0") or "0")
        if length > MAX_BODY_BYTES:
            raise ValueError("body too large for the test origin")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str = "text/plain",
              content_encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if content_encoding is not None:
            self.send_header("Content-Encoding", content_encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _store(self, body: bytes, multipart: bool) -> tuple[Part, ...]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts: tuple[Part, ...] = ()
        if multipart:
            boundary = boundary_of(headers.get("content-type", ""))
            if boundary:
                parts = tuple(split_multipart(body, boundary))
        self.server_origin._record(Received(self.command, self.path, headers, body, parts))
        return parts

    def _upload(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/studies":
            parts = self._store(body, multipart=True)
            answer = stow_response(parts, self.server_origin.url("/studies"))
            self._send(200, answer, "application/dicom+json")
        elif path == "/form":
            self._store(body, multipart=True)
            self._send(200, b"stored\n")
        elif path.startswith("/raw/"):
            self._store(body, multipart=False)
            self._send(200, b"stored\n")
        else:
            self._send(404, b"no such endpoint\n")

    do_POST = _upload
    do_PUT = _upload
    # any method may carry a body (WebDAV's PROPPATCH, a DELETE with a body): the
    # fail-closed Squid examples must route them all through icapdlp
    do_PATCH = _upload
    do_DELETE = _upload
    do_PROPPATCH = _upload

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/raw/"):  # a GET that carries a body, stored like an upload
            self._upload()
            return
        if path.startswith("/blob/"):
            blob = self.server_origin._blob(path[len("/blob/"):])
            if blob is None:
                self._send(404, b"no such blob\n")
            else:
                self._send(200, blob[1], blob[0], blob[2])
            return
        if path.startswith("/studies/"):
            instances = self.server_origin._study(path[len("/studies/"):])
            if instances is None:
                self._send(404, b"no such study\n")
                return
            body = build_multipart([("application/dicom", data) for data in instances], WADO_BOUNDARY)
            self._send(200, body, f'multipart/related; type="application/dicom"; boundary={WADO_BOUNDARY}')
            return
        self._send(404, b"no such endpoint\n")
