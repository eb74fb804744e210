"""Extra acceptor processes: more cores for the protocol work, one observer for all.

One event loop runs on one core. With ``server.acceptors = N`` the first
process (the one ``icapdlp serve`` started) spawns N-1 more; every process
listens on the same port with SO_REUSEPORT, so the kernel spreads new
connections between them, and each runs its own adapter and its share of
the worker processes. Observability stays single: the extra acceptors send
their transaction records in small batches through a pipe to the first
process, which feeds its metrics and its one audit log (one writer, so log
rotation stays safe). SIGHUP and SIGTERM are passed on to every acceptor.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("icapdlp.server")

#: records are sent in batches: one pipe write per batch instead of per request
BATCH_RECORDS = 256
#: seconds a record may wait in a batch (metrics lag at most this much)
BATCH_SECONDS = 0.05
#: seconds between restarts of an acceptor that keeps dying
RESTART_BACKOFF = 1.0


class ForwardingObserver:
    """An Observer that ships events to the first acceptor (runs in an extra acceptor)."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self._events: list = []
        self._timer: asyncio.TimerHandle | None = None

    def _add(self, event) -> None:
        self._events.append(event)
        if len(self._events) >= BATCH_RECORDS:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(BATCH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._events:
            return
        events, self._events = self._events, []
        try:
            self._conn.send_bytes(pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, pickle.PicklingError) as exc:  # observability must not stop serving
            log.error("could not forward %d observer events (%s)", len(events), type(exc).__name__)

    def connection_opened(self) -> None:
        self._add("opened")

    def connection_closed(self) -> None:
        self._add("closed")

    def request_started(self) -> None:
        self._add("started")

    def request_finished(self, record) -> None:
        self._add(record)

    def close(self) -> None:
        self.flush()


def replay(events: list, observer) -> None:
    """Feed forwarded events to the real observer (in the first acceptor)."""
    for event in events:
        if event == "opened":
            observer.connection_opened()
        elif event == "closed":
            observer.connection_closed()
        elif event == "started":
            observer.request_started()
        else:
            observer.request_finished(event)


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM us when the first acceptor dies, so no orphan keeps serving."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)


class AcceptorGroup:
    """The extra acceptors, seen from the first: start, feed their events, forward signals, stop.

    ``entry`` is what each spawned process runs, ``entry(config_path, port,
    index, conn, parent_pid)``: a module-level function (spawn pickles it by
    name) that builds and runs that acceptor's application.
    """

    def __init__(self, entry: Callable[..., None], count: int, config_path: str | None, port: int,
                 observer) -> None:
        self.entry = entry
        self.count = count
        self.config_path = config_path
        self.port = port
        self.observer = observer
        self._context = multiprocessing.get_context("spawn")
        self._children: dict[int, tuple[multiprocessing.Process, object]] = {}
        self._stopping = False
        self._watcher: asyncio.Task | None = None

    def start(self) -> None:
        for index in range(1, self.count):
            self._spawn(index)
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def _spawn(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        parent, child = self._context.Pipe(duplex=False)
        process = self._context.Process(target=self.entry,
                                        args=(self.config_path, self.port, index, child, os.getpid()),
                                        name=f"icapdlp-acceptor-{index}")
        process.start()
        child.close()
        # a blocking reader thread, not loop.add_reader: the loop makes the fd non-blocking, and
        # recv_bytes() on a non-blocking pipe fails half-way through a large batch
        pump = threading.Thread(target=self._pump, args=(parent, loop), name=f"icapdlp-events-{index}",
                                daemon=True)
        pump.start()
        self._children[index] = (process, parent, pump)

    def _pump(self, conn, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            try:
                loop.call_soon_threadsafe(self._replay, data)
            except RuntimeError:  # the loop is closed: we are shutting down
                return

    def _replay(self, data: bytes) -> None:
        replay(pickle.loads(data), self.observer)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process, _, _ in self._children.values()]

    async def _watch(self) -> None:
        """Restart an acceptor that died (not during shutdown)."""
        while not self._stopping:
            await asyncio.sleep(RESTART_BACKOFF)
            for index, (process, conn, pump) in list(self._children.items()):
                if not process.is_alive() and not self._stopping:
                    log.error("acceptor %d exited with %s; restarting it", index, process.exitcode)
                    pump.join(1.0)  # the dead child's pipe is at EOF
                    conn.close()
                    self._spawn(index)

    def signal(self, signum: int) -> None:
        for process, _, _ in self._children.values():
            if process.is_alive():
                os.kill(process.pid, signum)

    async def stop(self, grace: float) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
        self.signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        for process, conn, pump in self._children.values():
            await loop.run_in_executor(None, process.join, grace + 5)
            if process.is_alive():
                process.kill()
                await loop.run_in_executor(None, process.join)
            await loop.run_in_executor(None, pump.join, 5.0)  # the last batch arrives just before exit
            conn.close()
        await asyncio.sleep(0)  # run the replays the pumps scheduled
