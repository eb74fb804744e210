"""A small ICAP client (asyncio) for fault tests and the load benchmark.

It speaks what Squid 5.7 speaks: REQMOD/RESPMOD with ``Allow: 204`` (and
optionally 206), a preview of ``preview`` bytes, the rest after ``100
Continue``. It also lets a test stop half-way (mid-preview, mid-body, right
after 100 Continue) to play a client that disconnects. It is deliberately
independent of ``icapdlp.icap`` so the server is checked against a second
implementation, not against itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

#: a whole answer (OCR of a large image on a loaded machine) may take this long
READ_TIMEOUT = 120.0


@dataclass
class IcapReply:
    status: int
    headers: dict[str, str]  # ICAP headers, lower-cased names
    http_status: int | None = None  # of the encapsulated HTTP response, if any
    http_headers: dict[str, str] = field(default_factory=dict)
    http_start: str = ""
    body: bytes = b""
    use_original_body: int | None = None

    @property
    def block_reason(self) -> str | None:
        return self.http_headers.get("x-icapdlp-reason")

    @property
    def passed_unchanged(self) -> bool:
        return self.status == 204


def _chunked(body: bytes, size: int = 0xFBFF) -> bytes:
    out = [b"%x\r\n%b\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(out)


def build_request(method: str, service: str, http_head: bytes, body: bytes | None, *, preview: int | None,
                  allow: str = "204", res_head: bytes | None = None,
                  host: str = "127.0.0.1") -> tuple[bytes, bytes, bytes]:
    """(head + preview part, the rest after 100 Continue or b"", whether the preview holds all: b"1"/b"")."""
    entities, offset, heads = [], 0, b""
    if method == "REQMOD":
        entities.append("req-hdr=0")
        heads, offset = http_head, len(http_head)
    else:
        entities.append("req-hdr=0")
        entities.append(f"res-hdr={len(http_head)}")
        heads = http_head + (res_head or b"")
        offset = len(heads)
    body_name = "req-body" if method == "REQMOD" else "res-body"
    entities.append(f"{body_name}={offset}" if body is not None else f"null-body={offset}")
    lines = [f"{method} icap://{host}/{service} ICAP/1.0", f"Host: {host}", f"Allow: {allow}",
             f"Encapsulated: {', '.join(entities)}"]
    if preview is not None and body is not None:
        lines.append(f"Preview: {preview}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode() + heads
    if body is None:
        return head, b"", b"1"
    if preview is None:
        return head + _chunked(body) + b"0\r\n\r\n", b"", b"1"
    first = body[:preview]
    if len(body) <= preview:
        return head + _chunked(first) + b"0; ieof\r\n\r\n", b"", b"1"
    return head + _chunked(first) + b"0\r\n\r\n", _chunked(body[preview:]) + b"0\r\n\r\n", b""


def http_post(path: str, content_type: str, length: int, host: str = "pacs.example") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode("latin-1")


def http_get(path: str, host: str = "pacs.example") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1")


def http_ok(content_type: str, length: int) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n".encode()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_chunks(reader: asyncio.StreamReader) -> tuple[bytes, int | None]:
    out = bytearray()
    while True:
        line = (await reader.readuntil(b"\r\n"))[:-2]
        size_text, _, ext = line.partition(b";")
        size = int(size_text.strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # end of (empty) trailers
            original = None
            if b"use-original-body" in ext:
                original = int(ext.split(b"=", 1)[1].strip())
            return bytes(out), original
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def read_reply(reader: asyncio.StreamReader, status: int, headers: dict[str, str]) -> IcapReply:
    reply = IcapReply(status, headers)
    encapsulated = headers.get("encapsulated", "")
    pieces = (p.partition("=") for p in encapsulated.split(","))
    parts = [(name.strip(), int(off)) for name, _, off in pieces if off]
    for (name, start), (_, end) in zip(parts, parts[1:]):
        block = (await reader.readexactly(end - start)).decode("latin-1")
        if name == "res-hdr":
            lines = block.split("\r\n")
            reply.http_start = lines[0]
            reply.http_status = int(lines[0].split(" ")[1])
            for line in lines[1:]:
                if ":" in line:
                    k, _, v = line.partition(":")
                    reply.http_headers[k.strip().lower()] = v.strip()
        elif name == "req-hdr":
            reply.http_start = block.split("\r\n")[0]
            for line in block.split("\r\n")[1:]:
                if ":" in line:
                    k, _, v = line.partition(":")
                    reply.http_headers[k.strip().lower()] = v.strip()
    if parts and parts[-1][0] in ("res-body", "req-body"):
        reply.body, reply.use_original_body = await _read_chunks(reader)
    return reply


class IcapConnection:
    """One persistent ICAP connection; ``send`` runs a whole transaction."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> "IcapConnection":
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        return cls(reader, writer)

    async def send(self, method: str, service: str, http_head: bytes, body: bytes | None, *,
                   preview: int | None = 4096, res_head: bytes | None = None, allow: str = "204",
                   timeout: float = READ_TIMEOUT) -> IcapReply:
        first, rest, _ = build_request(method, service, http_head, body, preview=preview, allow=allow,
                                       res_head=res_head)
        self.writer.write(first)
        await self.writer.drain()
        status, headers = await asyncio.wait_for(read_head(self.reader), timeout)
        if status == 100:
            self.writer.write(rest)
            await self.writer.drain()
            status, headers = await asyncio.wait_for(read_head(self.reader), timeout)
        return await asyncio.wait_for(read_reply(self.reader, status, headers), timeout)

    async def options(self, service: str) -> IcapReply:
        self.writer.write(f"OPTIONS icap://127.0.0.1/{service} ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await self.writer.drain()
        status, headers = await asyncio.wait_for(read_head(self.reader), READ_TIMEOUT)
        return IcapReply(status, headers)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


async def one_request(port: int, method: str, service: str, http_head: bytes, body: bytes | None,
                      **kwargs) -> IcapReply:
    conn = await IcapConnection.open(port)
    try:
        return await conn.send(method, service, http_head, body, **kwargs)
    finally:
        await conn.close()


def upload(port: int, body: bytes, content_type: str = "application/dicom", *, service: str = "deid-req",
           preview: int | None = 4096, timeout: float = READ_TIMEOUT) -> IcapReply:
    """Blocking helper for tests: one REQMOD POST of ``body`` on a new connection."""
    head = http_post("/upload", content_type, len(body))
    return asyncio.run(one_request(port, "REQMOD", service, head, body, preview=preview, timeout=timeout))


def options(port: int, service: str = "deid-req") -> IcapReply:
    async def run() -> IcapReply:
        conn = await IcapConnection.open(port)
        try:
            return await conn.options(service)
        finally:
            await conn.close()
    return asyncio.run(run())
