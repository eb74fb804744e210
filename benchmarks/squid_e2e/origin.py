#!/usr/bin/env python3
"""The benchmark's origin: a uvloop HTTP/1.1 server that takes the uploads, checks them and counts.

The test origin (``tests/support/origin.py``) keeps every body in threads of
the test process; at the thousands of requests per second Squid forwards
here it would be the bottleneck and its memory would grow. This one keeps
only counters: uploads whose body is exactly ``upload_body()`` (``intact``)
and any other request (``other``), each answered ``200 stored`` with
keep-alive. ``GET /stats`` (sent directly, not through the proxy) returns
the counters as JSON, so ``run.py`` can check that every upload the client
saw answered 200 also reached the origin unchanged.

Usage: origin.py --port N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.squid_e2e.http_loadgen import UPLOAD_PATH, upload_body  # noqa: E402

STORED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nstored\n"
#: a request head larger than this is not one of ours; the connection is dropped
MAX_HEAD = 16 * 1024


class Counters:
    def __init__(self) -> None:
        self.intact = 0
        self.other = 0

    def as_json(self) -> bytes:
        return json.dumps({"intact": self.intact, "other": self.other}).encode()


class Sink(asyncio.Protocol):
    def __init__(self, counters: Counters, expected: bytes) -> None:
        self.counters, self.expected = counters, expected
        self.buf = bytearray()
        self.head: bytes | None = None
        self.need = 0
        self.chunked = False
        self.body = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            while self.step():
                pass
        except ValueError:  # not HTTP as the benchmark sends it
            self.counters.other += 1
            self.transport.close()

    def step(self) -> bool:
        buf = self.buf
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ValueError("head too long")
                return False
            self.head = bytes(buf[:end]).lower()
            del buf[:end + 4]
            self.chunked = b"\r\ntransfer-encoding: chunked" in self.head
            at = self.head.find(b"\r\ncontent-length:")
            self.need = int(self.head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
            self.body = bytearray()
        if self.chunked:
            if not self._take_chunks():
                return False
        else:
            if len(buf) < self.need:
                return False
            self.body = buf[:self.need]
            del buf[:self.need]
        self._answer()
        return bool(buf)

    def _take_chunks(self) -> bool:
        buf = self.buf
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(buf[:line_end]).split(b";")[0], 16)
            if size == 0:
                end = buf.find(b"\r\n\r\n", line_end)  # "0\r\n\r\n", or trailer fields before the blank line
                if end < 0:
                    return False
                del buf[:end + 4]
                return True
            if len(buf) < line_end + 2 + size + 2:
                return False
            self.body += buf[line_end + 2:line_end + 2 + size]
            del buf[:line_end + 2 + size + 2]

    def _answer(self) -> None:
        head, self.head = self.head, None
        request_line = head.split(b"\r\n", 1)[0]
        if request_line.startswith(b"get /stats "):
            body = self.counters.as_json()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        upload = request_line.startswith(b"post ") and UPLOAD_PATH.encode() in request_line
        if upload and self.body == self.expected:
            self.counters.intact += 1
        else:
            self.counters.other += 1
        self.transport.write(STORED)


async def serve(port: int) -> None:
    counters, expected = Counters(), upload_body()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Sink(counters, expected), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))
