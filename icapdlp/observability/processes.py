"""Memory and CPU of the server's child processes, read from /proc at scrape time.

prometheus-client's ``process_*`` metrics describe the main process only, but
the memory is in the workers (the NER model and Tesseract live there: about
545 MB for four workers against 80 MB for the main process). A per-pid label
would be a new series at every worker restart, so the children are summed:
how many there are, their total and largest resident memory, and their CPU
time. The largest RSS is what a memory limit or the OOM killer meets first.

"Children" are every process below the main one: the worker pool, the extra
acceptors of ``server.acceptors`` and their workers, and multiprocessing's
resource tracker. Finding them walks ``/proc/PID/task/TID/children`` (the
kernel's list, one read per thread) from the main process down.

CPU is a counter that must not fall when a worker is replaced: it adds the
CPU of live children to ``cutime + cstime`` of the main process and of every
live child, which the kernel keeps for children that have exited and been
reaped. A killed worker's CPU therefore moves from one term to the other. It
may still fall for a moment between a child's exit and its reaping; rate()
treats such a dip as a counter reset.
"""

from __future__ import annotations

import os

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: a bound on the walk: no sane icapdlp has more descendants than this
MAX_PROCESSES = 4096


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, their children, ...)."""
    found: list[int] = []
    queue = [root]
    while queue and len(found) < MAX_PROCESSES:
        pid = queue.pop()
        for child in _children(pid):
            found.append(child)
            queue.append(child)
    return found


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                children += [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            continue
    return children


def _stat(pid: int) -> tuple[float, float, int] | None:
    """(own CPU seconds, reaped children's CPU seconds, RSS bytes) of one process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after the last ")"
    fields = raw[raw.rfind(b")") + 2:].split()
    try:
        utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
        rss_pages = int(fields[21])
    except (IndexError, ValueError):
        return None
    return (utime + stime) / _TICKS, (cutime + cstime) / _TICKS, rss_pages * _PAGE


class ChildProcessCollector:
    """Exports ``icapdlp_worker_*``: the summed memory and CPU of the processes below this one."""

    def __init__(self, root: int | None = None) -> None:
        self.root = root if root is not None else os.getpid()

    def describe(self) -> list:
        return list(self._families())

    def collect(self) -> list:
        own_reaped = _stat(self.root)
        stats = [s for s in map(_stat, descendants(self.root)) if s is not None]
        return list(self._families(stats, own_reaped[1] if own_reaped else 0.0))

    @staticmethod
    def _families(stats: list | None = None, reaped: float = 0.0):
        count = GaugeMetricFamily(
            "icapdlp_worker_processes",
            "Live child processes (workers, extra acceptors and their workers, multiprocessing's resource tracker).")
        rss = GaugeMetricFamily(
            "icapdlp_worker_resident_memory_bytes", "Resident memory of all child processes, summed.")
        rss_max = GaugeMetricFamily(
            "icapdlp_worker_resident_memory_max_bytes", "Resident memory of the largest child process.")
        cpu = CounterMetricFamily(
            "icapdlp_worker_cpu_seconds", "User and system CPU time of child processes, live and exited.")
        if stats is not None:
            count.add_metric([], len(stats))
            rss.add_metric([], sum(s[2] for s in stats))
            rss_max.add_metric([], max((s[2] for s in stats), default=0))
            cpu.add_metric([], reaped + sum(s[0] + s[1] for s in stats))
        return count, rss, rss_max, cpu
