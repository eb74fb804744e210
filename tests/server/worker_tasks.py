"""Module-level task functions for worker pool tests (a spawned worker imports them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from icapdlp.verdict import BlockReason, Blocked

_INITIALISED: str | None = None


def initialise(value: str) -> None:
    global _INITIALISED
    _INITIALISED = f"{value}:{os.getpid()}"


def initialised() -> str | None:
    return _INITIALISED


def pid() -> int:
    return os.getpid()


def sleep_then(seconds: float, value):
    time.sleep(seconds)
    return value


def write_pid_and_sleep(path: str, seconds: float) -> int:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def die() -> None:
    os._exit(3)


def refuse() -> None:
    raise Blocked(BlockReason.UNPARSEABLE_DICOM, "synthetic")


def fail() -> None:
    raise ValueError("SMITH^JOHN")  # the parent must not receive this text


def rendezvous(directory: str, me: str, other: str, timeout: float = 20.0) -> tuple[int, bool]:
    """Announce ``me`` and wait for ``other``: both can only finish if they run at the same time."""
    Path(directory, me).touch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(directory, other).exists():
            return os.getpid(), True
        time.sleep(0.01)
    return os.getpid(), False


def spin(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def address_space_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_AS)[0]


def allocate(size: int) -> int:
    """Touch ``size`` bytes (a decoder's output buffer): MemoryError under a smaller cap."""
    block = bytearray(size)
    return len(block)


def allocate_as_pipeline_does(size: int) -> int:
    """The pipeline's way: a MemoryError turned into Blocked(limit-exceeded) ``from None``."""
    try:
        return allocate(size)
    except MemoryError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "deid: out of memory") from None


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def thread_count() -> int:
    """Threads of this process right after numpy's import (BLAS starts its pool then)."""
    import os

    import numpy  # noqa: F401

    return len(os.listdir("/proc/self/task"))
