"""A small, lean ICAP load generator: persistent connections, one request in flight per connection.

Run by ``run.py`` as a subprocess (so its CPU time is not the orchestrator's);
prints one JSON line: requests completed, duration, latency percentiles and
the status codes seen. Handles 204, 100 Continue (then sends the rest of the
body), and 200 with a chunked body, so it can drive any ICAP server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from pathlib import Path
from collections import Counter
from collections.abc import Callable

import uvloop

CASES = ("get-preview0", "1k-preview-204", "1m-body")
#: Squid sends bodies after the preview in chunks of up to 64 KiB
SQUID_CHUNK = 0xFFFF


def _chunked(data: bytes, size: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size]) for i in range(0, len(data), size))


def build_case(case: str, service_req: str, service_resp: str, port: int, preview: int = 4096) -> tuple[bytes, bytes]:
    """(bytes sent first, bytes sent after a 100 Continue) for one request of ``case``."""
    host = f"127.0.0.1:{port}"
    if case == "get-preview0":
        http = b"GET http://example.org/static/app.js HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n"
        head = (f"REQMOD icap://{host}/{service_req} ICAP/1.0\r\nHost: {host}\r\nAllow: 204, trailers\r\n"
                f"Preview: 0\r\nEncapsulated: req-hdr=0, null-body={len(http)}\r\n\r\n").encode()
        return head + http, b""
    rng = random.Random(7)
    if case == "1k-preview-204":
        body = bytes(rng.getrandbits(8) for _ in range(1024))
        http = (b"POST http://example.org/form HTTP/1.1\r\nHost: example.org\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1024\r\n\r\n")
        head = (f"REQMOD icap://{host}/{service_req} ICAP/1.0\r\nHost: {host}\r\nAllow: 204, trailers\r\n"
                f"Preview: {preview}\r\nEncapsulated: req-hdr=0, req-body={len(http)}\r\n\r\n").encode()
        return head + http + _chunked(body, 1024) + b"0; ieof\r\n\r\n", b""
    if case == "1m-body":
        body = bytearray(os.urandom(1024 * 1024))
        body[128:132] = b"NOPE"  # certainly not a DICOM Part-10 file
        body = bytes(body)
        req = b"GET http://example.org/video.bin HTTP/1.1\r\nHost: example.org\r\n\r\n"
        res = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Length: 1048576\r\n\r\n")
        # Squid offers no "Allow: 204" for bodies >= 64 KiB: the verdict must come from the preview
        head = (f"RESPMOD icap://{host}/{service_resp} ICAP/1.0\r\nHost: {host}\r\nAllow: trailers\r\n"
                f"Preview: {preview}\r\nEncapsulated: req-hdr=0, res-hdr={len(req)}, "
                f"res-body={len(req) + len(res)}\r\n\r\n").encode()
        first = head + req + res + _chunked(body[:preview], preview) + b"0\r\n\r\n"
        return first, _chunked(body[preview:], SQUID_CHUNK) + b"0\r\n\r\n"
    raise ValueError(case)


class Client(asyncio.Protocol):
    """One persistent connection sending the same request again and again."""

    def __init__(self, first: bytes, rest: bytes, stats: "Stats") -> None:
        self.first, self.rest, self.stats = first, rest, stats
        self.buf = bytearray()
        self.sent_at = 0.0
        self.transport = None
        self.reset()

    def reset(self) -> None:
        self.head_done = False
        self.body_from = -1  # offset of the chunked body in buf, -1 while unknown
        self.null_body = False
        self.need = 0  # bytes of encapsulated heads still to skip
        self.status = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        if self.stats.stopping:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.first)

    def connection_lost(self, exc) -> None:
        self.stats.open -= 1
        if not self.stats.stopping:
            self.stats.errors += 1
        if self.stats.open == 0:
            self.stats.done.set()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.step():
            pass

    def step(self) -> bool:
        buf = self.buf
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buf[:end])
            status = int(head[9:12])
            del buf[:end + 4]
            if status == 100:
                self.transport.write(self.rest)
                return True
            self.status = status
            self.head_done = True
            at = head.find(b"Encapsulated: ")
            if at < 0:
                return self.finish()
            line = head[at + 14:].split(b"\r\n", 1)[0]
            name, _, offset = line.rsplit(b",", 1)[-1].strip().partition(b"=")
            self.need = int(offset)
            self.null_body = name == b"null-body"
        if self.need:
            if len(buf) < self.need:
                return False
            del buf[:self.need]
            self.need = 0
        if self.null_body:
            return self.finish()
        return self.finish() if self.skip_chunked() else False

    def skip_chunked(self) -> bool:
        """Drop whole chunks from the buffer; True once the last chunk (and no trailer) is gone."""
        buf = self.buf
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(buf[:line_end]).split(b";")[0], 16)
            if size == 0:
                if len(buf) < line_end + 4:
                    return False
                del buf[:line_end + 4]
                return True
            if len(buf) < line_end + 2 + size + 2:
                return False
            del buf[:line_end + 2 + size + 2]

    def finish(self) -> bool:
        stats = self.stats
        stats.completed += 1
        if stats.measuring:
            stats.latencies.append(time.perf_counter() - self.sent_at)
            stats.statuses[self.status] += 1
        self.reset()
        self.send()
        return bool(self.buf)


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.measuring = False
        self.stopping = False
        self.errors = 0
        self.completed = 0  # every answer, warm-up and drain included (to compare with what a far side counted)
        self.open = 0
        self.done = asyncio.Event()


async def drive(port: int, make_client: Callable[[Stats], asyncio.Protocol], connections: int, warmup: float,
                duration: float) -> dict:
    """Open ``connections`` clients, count answers for ``duration`` after ``warmup``, then let each
    connection finish its request in flight and close."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    for _ in range(connections):
        await loop.create_connection(lambda: make_client(stats), "127.0.0.1", port)
        stats.open += 1
    await asyncio.sleep(warmup)
    stats.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(duration)
    stats.measuring = False
    elapsed = time.perf_counter() - started
    stats.stopping = True
    try:
        await asyncio.wait_for(stats.done.wait(), 30)
    except asyncio.TimeoutError:
        pass
    return {"requests": len(stats.latencies), "seconds": elapsed, "latencies": stats.latencies,
            "statuses": dict(stats.statuses), "errors": stats.errors, "completed": stats.completed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--case", choices=CASES, required=True)
    parser.add_argument("--service-req", required=True)
    parser.add_argument("--service-resp", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="write the JSON result to this file (default: stdout)")
    args = parser.parse_args()
    first, rest = build_case(args.case, args.service_req, args.service_resp, args.port)
    result = uvloop.run(drive(args.port, lambda stats: Client(first, rest, stats), args.connections, args.warmup,
                              args.duration))
    write_result(result, args.out)


def write_result(result: dict, out: Path | None) -> None:
    """The JSON line for run.py: to a file when given (what run.py uses), else stdout."""
    if out is None:
        print(json.dumps(result))
    else:
        out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
