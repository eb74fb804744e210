#!/usr/bin/env python3
"""The floor: a uvloop server that answers each benchmark request with a fixed 204 and does nothing else.

It parses nothing and checks nothing (it only knows where the requests of
cases a and b end), so it is NOT an ICAP server: it measures what one Python
process on this machine can do with the same sockets, loop and load
generator when the per-request work is zero. ``run.py --floor`` prints it
beside icapdlp and c-icap so the ratio can be read against what is possible.

Usage: bare_responder.py --port N
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop

NO_CONTENT = b'ICAP/1.0 204 No Content\r\nISTag: "bare"\r\nServer: bare\r\nEncapsulated: null-body=0\r\n\r\n'
IEOF_END = b"0; ieof\r\n\r\n"


class Bare(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        # case b ends with the ieof chunk; case a (null-body) after its second blank line
        if buf.endswith(IEOF_END) or (b"null-body" in buf and buf.count(b"\r\n\r\n") >= 2):
            self.buf = b""
            self.transport.write(NO_CONTENT)
        else:
            self.buf = buf


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))
