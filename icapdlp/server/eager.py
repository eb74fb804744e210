"""Run an adapter call's first step at once; await the rest only if it suspends.

Most adapter answers (every "not DICOM" 204) are known without waiting for
anything, so the connection calls the adapter's coroutine synchronously up to
its first suspension, as Python 3.12's eager tasks do. When it does suspend
(a worker process is doing the work) the :class:`Suspended` it returns is
awaited inside a task, which continues the coroutine exactly where it
stopped, forwarding results and cancellations unchanged.
"""

from __future__ import annotations


class Suspended:
    """A coroutine stopped at its first await; awaiting this finishes it."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro, pending) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self):
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # a cancellation (timeout) goes to the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def run_until_suspended(coro):
    """The coroutine's value if it finishes without suspending, else a :class:`Suspended`.

    An exception raised before the first suspension propagates to the caller.
    """
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return stop.value
    return Suspended(coro, pending)
