"""An awaitable that finishes a coroutine whose first step already ran elsewhere.

The connection starts a request's coroutine in ``data_received`` and the fast
lane starts the adapter's ``on_preview`` there too (``coro.send(None)``).
When such a coroutine suspends, or its first step raised, the rest belongs
to ordinary ``await`` code: awaiting a :class:`Resume` continues the
coroutine at the await where it stopped, forwarding wake-ups and
cancellations to it unchanged, or re-raises the first step's exception, or
returns the value it already produced. The awaiting code therefore cannot
tell the difference from having called the coroutine itself, which is what
keeps the fast paths byte-for-byte equal to the general one.
"""

from __future__ import annotations

_NOTHING = object()


class Resume:
    """The outcome of a coroutine's first step: a value, an exception or a suspension."""

    __slots__ = ("coro", "pending", "error", "value", "throw_first")

    def __init__(self, coro=None, pending=None, error: BaseException | None = None, value=_NOTHING) -> None:
        self.coro = coro
        self.pending = pending
        self.error = error
        self.value = value
        #: a cancellation that arrived before the awaiting code resumed the coroutine
        self.throw_first: BaseException | None = None

    @classmethod
    def first_step(cls, coro) -> "Resume":
        """Run ``coro`` up to its first suspension and capture how that went."""
        try:
            pending = coro.send(None)
        except StopIteration as stop:
            return cls(value=stop.value)
        except Exception as exc:  # noqa: BLE001 - re-raised where the coroutine is awaited
            return cls(error=exc)
        return cls(coro, pending)

    @property
    def finished(self) -> bool:
        """The first step returned a value: ``value`` holds it."""
        return self.value is not _NOTHING

    def __await__(self):
        if self.error is not None:
            raise self.error
        if self.value is not _NOTHING:
            return self.value
        coro, pending = self.coro, self.pending
        if self.throw_first is not None:
            try:
                pending = coro.throw(self.throw_first)
            except StopIteration as stop:
                return stop.value
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancellation (timeouts) goes to the coroutine, as before
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value
