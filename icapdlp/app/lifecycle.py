"""Run an :class:`App` until SIGTERM/SIGINT; SIGHUP reloads the policy.

SIGTERM stops accepting, lets in-flight requests finish within
``server.shutdown_grace`` and then exits. The reload is whatever the app
wires (``App.reload``): a bad new configuration is rejected and the running
one stays. Under systemd (``$NOTIFY_SOCKET`` set) each of these steps is
announced: READY=1 once the port listens and the app's readiness checks pass,
RELOADING=1 / READY=1 around a reload, STOPPING=1 (see :mod:`.notify`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop

from icapdlp.app.notify import Notifier, ServiceState

log = logging.getLogger("icapdlp.server")


async def serve_until_signalled(app, *, on_started: Callable[[], None] | None = None,
                                reload: Callable[[], Awaitable[bool]] | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: set[asyncio.Task] = set()
    notifier = Notifier.from_environment()  # before start(): spawned processes must not inherit it

    def spawn(coroutine) -> None:
        task = loop.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def reload_announced() -> None:
        state.reloading()
        accepted = False
        try:
            accepted = bool(await reload())
        finally:
            state.reloaded(accepted)

    def request_reload() -> None:
        if reload is None:
            log.info("SIGHUP ignored: no reload configured")
            return
        spawn(reload_announced())

    await app.start()
    state = ServiceState(notifier, getattr(app, "readiness", None))
    announcer: asyncio.Task | None = None
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, request_reload)
    try:
        if on_started is not None:
            on_started()
        announcer = loop.create_task(state.announce_when_ready())
        await stop.wait()
        state.stopping()
        log.info("stopping: finishing in-flight requests (grace %.0f s)", app.settings.server.shutdown_grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if announcer is not None:
            announcer.cancel()
        await app.stop()


def run(app, **kwargs) -> None:
    """Run on uvloop (about twice the request rate of the default loop for small answers)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_until_signalled(app, **kwargs))
