"""A pool of worker processes for CPU-heavy adaptation (parsing, OCR, NER).

The event loop never runs such work itself: one slow file must not delay
other connections, and only processes use more than one core. The pool is
our own rather than ``concurrent.futures.ProcessPoolExecutor`` because that
one cannot kill a single stuck worker: a deadline or a crash there breaks the
whole pool. Here each worker has its own pipe; a task past its deadline gets
its worker killed and replaced, a worker that dies mid-task is replaced, and
the caller gets a :class:`~icapdlp.verdict.Blocked` with the reason.

Each worker runs under a memory cap (``RLIMIT_AS``, ``[workers] max_memory_bytes``):
an allocation past it fails inside the worker (``MemoryError``), the object
is blocked with ``limit-exceeded`` and the worker is replaced, so one pixel
bomb never grows a process until the host's OOM killer picks a victim. The
cap is set by the worker on itself, so the event loop's process is never
limited.

Workers are started with ``spawn``: forking a process that already runs
threads and an event loop (uvloop) can copy held locks into the child.
Results travel through blocking pipe reads in helper threads, so the event
loop never waits on a pipe.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from icapdlp.server.worker_memory import WORKER_ENVIRONMENT, cap_own_memory, memory_cap, ran_out_of_memory
from icapdlp.verdict import BlockReason, Blocked

log = logging.getLogger("icapdlp.workers")

#: seconds a new worker may take to import and run its initializer (loading
#: the NER model takes ~1 s, on a loaded machine much more)
READY_TIMEOUT = 120.0
#: cap on the pause between attempts to replace a worker whose start failed
MAX_RESPAWN_BACKOFF = 30.0


class Overloaded(Exception):
    """More tasks are waiting than ``workers.max_queue``; the server answers 503."""


def _worker_main(conn, initializer, initargs, memory_limit: int = 0) -> None:
    """Body of a worker process: initialise once, then run tasks until the pipe closes.

    A task that ran out of memory is answered ``limit-exceeded`` with the kind
    ``"retire"``, and the worker exits: its heap may be fragmented, an engine
    may be half-built, and the pool replaces it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads are the parent's business
    cap_own_memory(memory_limit)
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # report the type only: messages may quote data
        conn.send(("init-failed", type(exc).__name__))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            fn, args = pickle.loads(raw)
            result: tuple = ("ok", fn(*args))
        except Blocked as exc:
            result = ("blocked", exc.reason, exc.detail)
            if ran_out_of_memory(exc):
                result = ("retire", BlockReason.LIMIT_EXCEEDED, exc.detail or "worker memory cap reached")
        except MemoryError:
            result = ("retire", BlockReason.LIMIT_EXCEEDED, "worker memory cap reached")
        except BaseException as exc:
            result = ("error", type(exc).__name__)
            if ran_out_of_memory(exc):
                result = ("retire", BlockReason.LIMIT_EXCEEDED, "worker memory cap reached")
        raw = fn = args = None  # drop the task's data before answering
        try:
            conn.send(result)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send(("error", f"unpicklable result ({type(exc).__name__})"))
        except MemoryError:
            conn.send(("retire", BlockReason.LIMIT_EXCEEDED, "worker memory cap reached"))
            return
        if result[0] == "retire":
            return


class _Worker:
    __slots__ = ("process", "conn", "killed", "retired")

    def __init__(self, process, conn) -> None:
        self.process = process
        self.conn = conn
        self.killed = False  # killed by us for a deadline
        self.retired = False  # left after reaching its memory cap

    @property
    def pid(self) -> int:
        return self.process.pid


def _start_worker(context, initializer, initargs, memory_limit: int = 0) -> _Worker:
    """Start one worker and wait until its initializer has run (blocking: run in a thread)."""
    parent, child = context.Pipe(duplex=True)
    process = context.Process(target=_worker_main, args=(child, initializer, initargs, memory_limit),
                              name="icapdlp-worker", daemon=True)
    process.start()
    child.close()
    try:
        if not parent.poll(READY_TIMEOUT):
            raise RuntimeError(f"worker not ready after {READY_TIMEOUT:g} s")
        message = parent.recv()
    except (EOFError, OSError, RuntimeError) as exc:
        process.kill()
        process.join()
        parent.close()
        raise RuntimeError(f"worker failed to start ({type(exc).__name__})") from None
    if message[0] != "ready":
        process.join()
        parent.close()
        raise RuntimeError(f"worker initializer raised {message[1]}")
    return _Worker(process, parent)


def _roundtrip(conn, fn, args) -> tuple:
    """Send one task and wait for its answer (runs in a helper thread)."""
    conn.send_bytes(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
    return conn.recv()


class WorkerPool:
    """``await pool.run(fn, *args)`` runs ``fn(*args)`` in a worker process.

    ``fn`` and ``args`` must be picklable (module-level functions; pass large
    bodies by file path, see ``Body.path``). ``queue_depth`` is the number of
    tasks waiting for a free worker, for the queue gauge.
    """

    def __init__(
        self,
        processes: int = 0,
        *,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple = (),
        task_deadline: float = 120.0,
        max_queue: int = 256,
        start_method: str = "spawn",
        memory_limit: int = 0,
    ) -> None:
        self.size = processes or os.cpu_count() or 1
        self.task_deadline = task_deadline
        #: each worker's RLIMIT_AS in bytes (0: none)
        self.memory_limit = memory_limit
        self.max_queue = max_queue
        self._context = multiprocessing.get_context(start_method)
        self._initializer = initializer
        self._initargs = initargs
        # one thread per in-flight task plus one per possible concurrent respawn
        self._threads = ThreadPoolExecutor(max_workers=2 * self.size + 1, thread_name_prefix="icapdlp-pool")
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._waiters: deque[asyncio.Future] = deque()
        self._respawns: set[asyncio.Task] = set()
        self._closed = False
        self.busy = 0  # tasks running in a worker right now (for the busy gauge)

    @classmethod
    def from_options(cls, options, processes: int | None = None, **kwargs) -> "WorkerPool":
        """A pool per ``WorkerOptions``; ``processes`` overrides the count (an acceptor's share).

        The automatic memory cap shares the host between ALL workers (every
        acceptor's), not only this pool's.
        """
        total = options.processes or os.cpu_count() or 1
        return cls(options.processes if processes is None else processes, task_deadline=options.task_deadline,
                   max_queue=options.max_queue, memory_limit=memory_cap(options.max_memory_bytes, total),
                   **kwargs)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker; raises RuntimeError if any fails to initialise."""
        for name, value in WORKER_ENVIRONMENT.items():  # inherited by every worker, replacements too
            os.environ.setdefault(name, value)
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._threads, _start_worker, self._context, self._initializer, self._initargs,
                                   self.memory_limit)
              for _ in range(self.size)),
            return_exceptions=True)
        for result in results:
            if isinstance(result, _Worker):
                self._all.add(result)
                self._idle.append(result)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.close()
            raise RuntimeError(f"{len(failures)} of {self.size} workers failed to start: {failures[0]}")

    async def close(self) -> None:
        """Stop all workers (a closed pipe makes them exit; stragglers are killed)."""
        self._closed = True
        for task in list(self._respawns):
            task.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Overloaded("worker pool closed"))
        workers = list(self._all)
        self._all.clear()
        self._idle.clear()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, _stop_worker, w) for w in workers))
        self._threads.shutdown(wait=False)

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    @property
    def pids(self) -> list[int]:
        return sorted(w.pid for w in self._all)

    # -- running tasks -----------------------------------------------------------------

    async def run(self, fn: Callable[..., Any], *args: Any, deadline: float | None = None) -> Any:
        timeout = self.task_deadline if deadline is None else deadline
        worker = await self._acquire()
        self.busy += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, _roundtrip, worker.conn, fn, args)
        timer = loop.call_later(timeout, _kill_for_deadline, worker, future)
        # the worker goes back to the pool (or is replaced) when the task really ends,
        # even if our caller is cancelled before that
        future.add_done_callback(lambda f: self._task_ended(worker, f, timer))
        try:
            message = await asyncio.shield(future)
        except (EOFError, OSError):
            if worker.killed:
                raise Blocked(BlockReason.DEADLINE_EXCEEDED, f"worker task exceeded {timeout:g} s") from None
            raise Blocked(BlockReason.WORKER_CRASHED, "worker process died during the task") from None
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise Blocked(BlockReason.INTERNAL_ERROR, f"task not picklable ({type(exc).__name__})") from None
        if worker.killed:
            raise Blocked(BlockReason.DEADLINE_EXCEEDED, f"worker task exceeded {timeout:g} s")
        kind = message[0]
        if kind == "ok":
            return message[1]
        if kind == "blocked" or kind == "retire":  # "retire": out of memory; _task_ended replaces it
            raise Blocked(message[1], message[2])
        raise Blocked(BlockReason.INTERNAL_ERROR, f"worker task raised {message[1]}")

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise Overloaded("worker pool closed")
        if self._idle:
            return self._idle.pop()
        if len(self._waiters) >= self.max_queue:
            raise Overloaded(f"{len(self._waiters)} tasks already waiting for a worker")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # we were handed a worker but no longer need it
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def _release(self, worker: _Worker) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _task_ended(self, worker: _Worker, future: asyncio.Future, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        self.busy -= 1
        error = None if future.cancelled() else future.exception()
        retired = error is None and not future.cancelled() and future.result()[0] == "retire"
        if worker.killed or retired or isinstance(error, (EOFError, OSError)) or future.cancelled():
            worker.retired = retired
            self._replace(worker)
        elif not self._closed:
            self._release(worker)

    def _replace(self, worker: _Worker) -> None:
        self._all.discard(worker)
        if self._closed:
            return
        why = "deadline" if worker.killed else "memory cap" if worker.retired else "died"
        log.warning("replacing worker process %d (%s)", worker.pid, why)
        task = asyncio.get_running_loop().create_task(self._respawn(worker))
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)

    async def _respawn(self, old: _Worker) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._threads, _stop_worker, old)
        delay = 0.0
        while not self._closed:
            try:
                worker = await loop.run_in_executor(
                    self._threads, _start_worker, self._context, self._initializer, self._initargs,
                    self.memory_limit)
            except RuntimeError as exc:
                delay = min(max(2 * delay, 0.5), MAX_RESPAWN_BACKOFF)
                log.error("could not replace a worker (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if self._closed:
                _stop_worker(worker)
                return
            self._all.add(worker)
            self._release(worker)
            return


def _kill_for_deadline(worker: _Worker, future: asyncio.Future) -> None:
    if not future.done():
        worker.killed = True
        worker.process.kill()


def _stop_worker(worker: _Worker, grace: float = 2.0) -> None:
    """Close the worker's pipe (it exits on EOF) and reap it; kill it if it lingers."""
    try:
        worker.conn.close()
    except OSError:
        pass
    worker.process.join(grace)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
