"""Running worker tasks in the server process, for setups without a worker pool.

The server may be started without a pool (tests of the protocol layer, tiny
deployments); the adapter then runs its tasks in a thread of this process.
There is no deadline kill and no crash isolation here: that is what the real
pool in ``icapdlp.server.workers`` is for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class InlinePool:
    """``await run(fn, *args)`` in a thread; the initializer runs once, at construction."""

    def __init__(self, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> None:
        if initializer is not None:
            initializer(*initargs)

    async def run(self, fn: Callable[..., Any], *args: Any, deadline: float | None = None) -> Any:
        return await asyncio.to_thread(fn, *args)
