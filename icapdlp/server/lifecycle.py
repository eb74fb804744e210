"""Run an :class:`App` until SIGTERM/SIGINT; SIGHUP reloads the policy.

SIGTERM stops accepting, lets in-flight requests finish within
``server.shutdown_grace`` and then exits. The reload is whatever the app
wires (``App.reload``): a bad new configuration is rejected and the running
one stays.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop

log = logging.getLogger("icapdlp.server")


async def serve_until_signalled(app, *, on_started: Callable[[], None] | None = None,
                                reload: Callable[[], Awaitable[bool]] | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task] = set()

    def request_reload() -> None:
        if reload is None:
            log.info("SIGHUP ignored: no reload configured")
            return
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    await app.start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, request_reload)
    try:
        if on_started is not None:
            on_started()
        await stop.wait()
        log.info("stopping: finishing in-flight requests (grace %.0f s)", app.settings.server.shutdown_grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await app.stop()


def run(app, **kwargs) -> None:
    """Run on uvloop (about twice the request rate of the default loop for small answers)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_until_signalled(app, **kwargs))
