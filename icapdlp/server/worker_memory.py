"""How much memory a worker process may use, and what it does when it runs out.

Why a cap per worker: one object whose decoding or cleaning grows without
bound (a pixel bomb, a bug in a native decoder) must cost one object, not the
host. The kernel enforces ``RLIMIT_AS`` on the worker's address space, an
allocation past it fails (``MemoryError`` in Python and in most extensions),
and the pool blocks that object with ``limit-exceeded`` and replaces the
worker. The default cap shares 3/4 of the memory the service may really use
(the host's, or its systemd or container cgroup limit) between all workers.
"""

from __future__ import annotations

import os
import resource

from icapdlp.config.server_options import MIN_WORKER_MEMORY

#: of the host's memory (or the cgroup's limit), the share the worker caps add up to by default;
#: the rest is for the event loop, Squid and the page cache
AUTO_MEMORY_SHARE = 0.75


def host_memory_bytes() -> int:
    """Physical memory, or the smallest cgroup memory limit above this process when smaller.

    A systemd ``MemoryMax=`` or a container limit is the real ceiling; the
    effective limit is the smallest on the path from this process's group to
    the root, so each level is read.
    """
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min([total, *_cgroup_memory_limits()])


#: where each cgroup version keeps a group's memory limit: controller field in /proc/self/cgroup
#: ("" for the v2 unified hierarchy), the hierarchy's mount, the limit file
_CGROUP_LIMIT_FILES = (("", "", "memory.max"), ("memory", "memory", "memory.limit_in_bytes"))


def _cgroup_memory_limits(membership: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> list[int]:
    """The memory limits of this process's cgroup (v2, or v1's memory controller) and its ancestors."""
    try:
        with open(membership) as handle:  # lines "id:controllers:path"
            groups = [line.split(":", 2) for line in handle.read().splitlines() if line.count(":") >= 2]
    except OSError:
        return []
    limits = []
    for controller, mount, name in _CGROUP_LIMIT_FILES:
        path = next((g[2] for g in groups if controller in g[1].split(",") or g[1] == controller), None)
        if path is None:
            continue
        parts = [part for part in path.split("/") if part and part != ".."]
        for depth in range(len(parts), -1, -1):
            try:
                with open(os.path.join(root, mount, *parts[:depth], name)) as handle:
                    text = handle.read().strip()
            except OSError:
                continue
            if text.isdigit():  # v2 says "max" when unlimited; v1 a huge number, which min() ignores
                limits.append(int(text))
    return limits


def memory_cap(configured: int, workers: int) -> int:
    """Each worker's address-space cap: ``configured``, or (0) an equal share of 3/4 of the host."""
    if configured:
        return configured
    return max(MIN_WORKER_MEMORY, int(host_memory_bytes() * AUTO_MEMORY_SHARE) // max(1, workers))


#: one BLAS thread per worker: the pool already runs one worker per core, and every extra thread
#: reserves address space (stack, allocator arena, BLAS buffers) that counts against the cap.
#: Set in the parent before workers start (a spawned worker imports numpy while it unpickles its
#: arguments, before its own code runs); an operator's own value wins.
WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def cap_own_memory(limit: int) -> None:
    """Cap this process's address space; soft and hard, so nothing in the worker can raise it again."""
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def ran_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a MemoryError (``raise ... from None`` keeps it)."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
