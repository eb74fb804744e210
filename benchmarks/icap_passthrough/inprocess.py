#!/usr/bin/env python3
"""Per-request Python cost of the ICAP hot path, in process, without sockets.

Feeds case a) or b) of ``run.py`` into one ``IcapConnection`` through a fake
transport, with the real adapter (``pool=None``: inline) and the real
observer, and prints microseconds per request; ``--profile`` adds a cProfile
listing. This is the tool for finding where the time goes: the socket
benchmark (``run.py``) only says how much.

Usage: .venv/bin/python benchmarks/icap_passthrough/inprocess.py [--case a] [--n 20000] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import uvloop  # noqa: E402

from loadgen import build_case  # noqa: E402

from icapdlp.app.application import adapter_factory, build_observer, build_runtime  # noqa: E402
from icapdlp.config import Settings  # noqa: E402
from icapdlp.config.server_options import ServerOptions  # noqa: E402
from icapdlp.observability.events import NullObserver  # noqa: E402
from icapdlp.observability.options import AuditOptions  # noqa: E402
from icapdlp.server.connection import IcapConnection  # noqa: E402
from icapdlp.server.listener import IcapServer  # noqa: E402
from icapdlp.server.passthrough import PassThroughAdapter  # noqa: E402

CASES = {"a": "get-preview0", "b": "1k-preview-204"}


class FakeTransport:
    """Collects what the connection writes; counts final responses by their status line."""

    def __init__(self) -> None:
        self.responses = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.responses += data.count(b"ICAP/1.0 204 ")

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def drive(args) -> None:
    settings = Settings(server=ServerOptions(port=0), audit=AuditOptions(destination="off"))  # as run.py
    key = b"k" * 32
    adapter = (PassThroughAdapter() if args.adapter == "passthrough"
               else adapter_factory().build(settings, key, None))
    observer = NullObserver() if args.observer == "null" else build_observer(settings, key)
    server = IcapServer(settings, build_runtime(settings, key, adapter), observer)
    service = next(n for n, s in settings.services.items() if s.method == "REQMOD")
    request, _ = build_case(CASES[args.case], service, service, 1344)
    conn = IcapConnection(server)
    transport = FakeTransport()
    conn.connection_made(transport)
    batch = max(1, args.pipeline)

    async def run(n: int) -> float:
        start = time.process_time_ns()
        target = transport.responses + n
        while transport.responses < target:
            conn.data_received(request * batch)
            while transport.responses < target and transport.responses % batch:
                await asyncio.sleep(0)
            await asyncio.sleep(0)  # let the connection's task run if the data went to it
        return (time.process_time_ns() - start) / n / 1000

    await run(2000)  # warm caches
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    # the machine is shared: CPU time of this process (not wall time), best of several rounds
    us = min([await run(args.n) for _ in range(args.repeat)])
    if profiler:
        profiler.disable()
    print(f"case {args.case} ({CASES[args.case]}), best of {args.repeat}, adapter={type(adapter).__name__}, "
          f"observer={type(observer).__name__}, pipeline={batch}: {us:.2f} us/request")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    conn.connection_lost(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--pipeline", type=int, default=1, help="requests per data_received")
    parser.add_argument("--adapter", choices=("auto", "passthrough"), default="auto")
    parser.add_argument("--observer", choices=("real", "null"), default="real")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of --n requests; the best is printed")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    uvloop.run(drive(args))


if __name__ == "__main__":
    main()
