"""An in-process ICAP server on a background thread, a raw ICAP client, and scripted adapters.

The server runs on its own uvloop loop in a thread so tests can drive it with
blocking sockets and with the real ``c-icap-client`` subprocess alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import threading
from dataclasses import dataclass, field

import uvloop

from icapdlp.adaptation.api import Body, NoChange
from icapdlp.config import Settings
from icapdlp.config.server_options import LimitsOptions, ServerOptions
from icapdlp.server.blockpage import minimal_block_response
from icapdlp.server.listener import IcapServer, Runtime
from icapdlp.config.server_options import LimitsOptions, ServerOptions
from icapdlp.icap.replies import Replies

ISTAG = '"test-istag"'
SERVICES = {"deid-req": "REQMOD", "deid-resp": "RESPMOD"}


def make_settings(*, limits: dict | None = None, server: dict | None = None, **sections) -> Settings:
    return Settings(server=ServerOptions(**{"port": 0, **(server or {})}),
                    limits=LimitsOptions(**(limits or {})), **sections)


class ListObserver:
    """Keeps every call, so tests can check what the server reported."""

    def __init__(self) -> None:
        self.opened = self.closed = self.started = 0
        self.records: list = []

    def connection_opened(self) -> None:
        self.opened += 1

    def connection_closed(self) -> None:
        self.closed += 1

    def request_started(self) -> None:
        self.started += 1

    def request_finished(self, record) -> None:
        self.records.append(record)


class ScriptedAdapter:
    """Answers with fixed decisions (or callables of the call's arguments) and records every call."""

    def __init__(self, preview=None, body=None, delay: float = 0.0) -> None:
        self.preview_decision = preview if preview is not None else NoChange()
        self.body_decision = body if body is not None else NoChange()
        self.delay = delay
        self.calls: list[tuple] = []

    @staticmethod
    def _resolve(decision, *args):
        decision = decision(*args) if callable(decision) and not isinstance(decision, type) else decision
        if isinstance(decision, BaseException):
            raise decision
        return decision

    async def on_preview(self, tx, preview: bytes, complete: bool):
        self.calls.append(("preview", tx, preview, complete))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._resolve(self.preview_decision, tx, preview, complete)

    async def on_body(self, tx, body: Body):
        import os

        self.calls.append(("body", tx, body.read_all(), body.path, body.path is not None and os.path.exists(body.path)))
        return self._resolve(self.body_decision, tx, body)

    def block_response(self, tx, reason):
        return minimal_block_response(None, reason)  # no tx id: keeps transcripts byte-exact


class ServerThread:
    def __init__(self, settings: Settings, adapter, observer=None, replies: Replies | None = None) -> None:
        self.settings = settings
        self.observer = observer or ListObserver()
        replies = replies or Replies(ISTAG, SERVICES, preview_size=settings.server.preview_size,
                                     options_ttl=settings.server.options_ttl,
                                     max_connections=settings.limits.max_connections)
        self.runtime = Runtime(adapter, replies)
        self.loop = uvloop.new_event_loop()
        self.server: IcapServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = IcapServer(self.settings, self.runtime, self.observer)
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> "ServerThread":
        self.thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    @property
    def port(self) -> int:
        return self.server.port

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float = 0.0) -> None:
        if self.thread.is_alive():
            self.run(self.server.shutdown(grace))
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@dataclass
class Response:
    status: int
    head: bytes  # ICAP head incl. the blank line
    headers: dict[str, str]
    http_heads: bytes = b""
    body: bytes | None = None  # de-chunked body, None for null-body
    last_chunk: bytes = b""  # the last-chunk line, e.g. b"0; use-original-body=10"
    raw: bytes = field(default=b"", repr=False)

    def normalized(self) -> bytes:
        """The raw bytes with the Date value blanked, for golden comparisons."""
        return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: <date>\r\n", self.raw)


class IcapClient:
    """A blocking raw-socket ICAP client that reads responses exactly by their framing."""

    def __init__(self, port: int, timeout: float = 10.0, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def _take_until(self, marker: bytes) -> bytes:
        while (index := self.buffer.find(marker)) < 0:
            self._fill()
        out, self.buffer = self.buffer[:index + len(marker)], self.buffer[index + len(marker):]
        return out

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def read_response(self) -> Response:
        head = self._take_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        raw = head
        response = Response(status, head, headers)
        if "encapsulated" in headers:
            entities = [(n.strip(), int(v)) for n, _, v in (p.partition("=") for p in headers["encapsulated"].split(","))]
            body_name, offset = entities[-1]
            response.http_heads = self._take(offset)
            raw += response.http_heads
            if body_name != "null-body":
                body = b""
                while True:
                    line = self._take_until(b"\r\n")
                    raw += line
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        response.last_chunk = line[:-2]
                        raw += self._take_until(b"\r\n")  # no trailers from our server
                        break
                    data = self._take(size + 2)
                    raw += data
                    body += data[:-2]
                response.body = body
        response.raw = raw
        return response

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` (nothing more to read)."""
        self.sock.settimeout(timeout)
        try:
            return self.buffer == b"" and self.sock.recv(1) == b""
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def with_limits(settings: Settings, **limits) -> Settings:
    return dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, **limits))
