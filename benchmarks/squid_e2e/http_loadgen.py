#!/usr/bin/env python3
"""HTTP load through a forward proxy: the same 1 KiB upload again and again on persistent connections.

Run by ``run.py`` as a subprocess, like ``icap_passthrough/loadgen.py``,
whose connection loop, statistics and JSON line it reuses; only the request
(an absolute-URI POST, as a browser sends it to a proxy) and the parsing of
the answer (an HTTP response: Content-Length or chunked) differ.

Usage: http_loadgen.py --proxy-port N --origin-port M [--connections 32] [--warmup 1] [--duration 5]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.icap_passthrough.loadgen import Client, drive, write_result  # noqa: E402

UPLOAD_PATH = "/upload"
UPLOAD_TYPE = "application/octet-stream"


def upload_body() -> bytes:
    """1 KiB of fixed pseudo-random bytes: not DICOM (no ``DICM`` at 128), not text, not an archive.

    The origin compares every body it receives with this one, so an altered
    upload is counted, not measured.
    """
    body = random.Random(7).randbytes(1024)
    assert body[128:132] != b"DICM" and body[:2] != b"PK" and body[:2] != b"\x1f\x8b"
    return body


def upload_request(origin_port: int) -> bytes:
    body = upload_body()
    host = f"127.0.0.1:{origin_port}"
    head = (f"POST http://{host}{UPLOAD_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {UPLOAD_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


class HttpClient(Client):
    """One persistent client connection to the proxy; an answer ends with its body."""

    def reset(self) -> None:
        super().reset()
        self.chunked = False

    def step(self) -> bool:
        buf = self.buf
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buf[:end]).lower()
            del buf[:end + 4]
            self.status = int(head[9:12])
            if self.status == 100:  # a proxy may pass an interim answer on; the final one follows
                return True
            self.head_done = True
            self.chunked = b"\r\ntransfer-encoding: chunked" in head
            at = head.find(b"\r\ncontent-length:")
            self.need = int(head[at + 17:].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if self.chunked:
            return self.finish() if self.skip_chunked() else False
        if len(buf) < self.need:
            return False
        del buf[:self.need]
        return self.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy-port", type=int, required=True)
    parser.add_argument("--origin-port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="write the JSON result to this file (default: stdout)")
    args = parser.parse_args()
    request = upload_request(args.origin_port)
    result = uvloop.run(drive(args.proxy_port, lambda stats: HttpClient(request, b"", stats),
                              args.connections, args.warmup, args.duration))
    write_result(result, args.out)


if __name__ == "__main__":
    main()
