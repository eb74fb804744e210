"""A small blocking ICAP client that writes requests byte by byte, for transcript tests.

It speaks exactly what the tests choose (preview size, Allow values, chunk
sizes), so each wrapping can be sent the way Squid sends it, and it keeps
the raw response so tests can assert on ICAP and HTTP heads and on the body.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

CRLF = b"\r\n"


@dataclass
class IcapReply:
    status: int
    icap_headers: dict[str, str]
    http_head: bytes  # the encapsulated HTTP head(s), raw
    body: bytes  # de-chunked encapsulated body (for 206: the new prefix only)
    use_original_body: int | None = None
    raw_head: bytes = b""
    http_fields: dict[str, str] = field(default_factory=dict)

    @property
    def http_status(self) -> int | None:
        first = self.http_head.split(CRLF, 1)[0].split()
        return int(first[1]) if len(first) > 1 and first[0].startswith(b"HTTP/") else None

    def rebuilt(self, original: bytes) -> bytes:
        """The body the client ends up with (206: prefix + original from the offset)."""
        if self.status == 206 and self.use_original_body is not None:
            return self.body + original[self.use_original_body:]
        return self.body


def http_request_head(method: str, target: str, fields: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_response_head(status: int, fields: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} OK"] + [f"{k}: {v}" for k, v in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunks(data: bytes, size: int) -> bytes:
    out = bytearray()
    for start in range(0, len(data), size):
        piece = data[start:start + size]
        out += f"{len(piece):x}".encode() + CRLF + piece + CRLF
    return bytes(out)


def send(port: int, method: str, service: str, *, req_head: bytes, res_head: bytes | None = None,
         body: bytes | None, preview: int | None = None, allow: str = "204", chunk: int = 65535,
         timeout: float = 120.0) -> IcapReply:
    """One REQMOD/RESPMOD on a fresh connection."""
    parts = [("req-hdr", req_head)]
    if res_head is not None:
        parts.append(("res-hdr", res_head))
    offsets, position = [], 0
    for name, head in parts:
        offsets.append(f"{name}={position}")
        position += len(head)
    body_name = ("res-body" if res_head is not None else "req-body") if body is not None else "null-body"
    offsets.append(f"{body_name}={position}")
    icap = [f"{method} icap://127.0.0.1:{port}/{service} ICAP/1.0", "Host: 127.0.0.1",
            f"Encapsulated: {', '.join(offsets)}"]
    if allow:
        icap.append(f"Allow: {allow}")
    if preview is not None and body is not None:
        icap.append(f"Preview: {preview}")
    message = ("\r\n".join(icap) + "\r\n\r\n").encode() + b"".join(h for _, h in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        if body is None:
            sock.sendall(message)
        elif preview is None:
            sock.sendall(message + _chunks(body, chunk) + b"0\r\n\r\n")
        else:
            head, rest = body[:preview], body[preview:]
            ending = b"0; ieof\r\n\r\n" if not rest else b"0\r\n\r\n"
            sock.sendall(message + _chunks(head, chunk) + ending)
            if rest:
                status_line, headers = _read_head(reader)
                if b" 100 " not in status_line:
                    return _finish(reader, status_line, headers)
                sock.sendall(_chunks(rest, chunk) + b"0\r\n\r\n")
        status_line, headers = _read_head(reader)
        return _finish(reader, status_line, headers)


def _read_head(reader) -> tuple[bytes, bytes]:
    lines = []
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line == CRLF:
            break
        lines.append(line)
    return lines[0], b"".join(lines[1:])


def _finish(reader, status_line: bytes, header_bytes: bytes) -> IcapReply:
    status = int(status_line.split()[1])
    headers = {}
    for line in header_bytes.split(CRLF):
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.decode().strip().lower()] = value.decode().strip()
    encapsulated = headers.get("encapsulated", "")
    fields = dict(item.strip().split("=") for item in encapsulated.split(",") if "=" in item)
    body_key = next((k for k in fields if k.endswith("-body")), None)
    http_head = reader.read(int(fields[body_key])) if body_key else b""
    reply = IcapReply(status, headers, http_head, b"", raw_head=status_line + header_bytes)
    for line in http_head.split(CRLF)[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            reply.http_fields[name.decode().strip().lower()] = value.decode("latin-1").strip()
    if body_key in ("req-body", "res-body"):
        body = bytearray()
        while True:
            size_line = reader.readline()
            size_text, _, extension = size_line.strip().partition(b";")
            size = int(size_text, 16)
            if size == 0:
                if b"use-original-body" in extension:
                    reply.use_original_body = int(extension.split(b"=")[1])
                reader.readline()
                break
            body += reader.read(size)
            reader.readline()
        reply.body = bytes(body)
    return reply
