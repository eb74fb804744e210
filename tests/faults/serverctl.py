"""Looking at a running ``icapdlp serve`` from outside: its workers, metrics, fds, RSS, spool.

Everything here reads /proc and the metrics listener, the way an operator
would; nothing reaches into the server's memory.
"""

from __future__ import annotations

import functools
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.processes import ServerProcess


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def worker_pids(server: ServerProcess) -> list[int]:
    """Children started by multiprocessing's spawn (not its resource tracker)."""
    return sorted(pid for pid in children(server.pid)
                  if "multiprocessing" in cmdline(pid) and "resource_tracker" not in cmdline(pid))


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def http_get(server: ServerProcess, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(server: ServerProcess, name: str, labels: str = "") -> float:
    """One sample from /metrics, e.g. metric(s, "icapdlp_blocks_total", 'reason="worker-crashed"')."""
    _, text = http_get(server, "/metrics")
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.M)
    total = 0.0
    seen = False
    for match in pattern.finditer(text):
        if labels and labels not in (match.group(1) or ""):
            continue
        total += float(match.group(2))
        seen = True
    if not seen:
        raise KeyError(f"{name}{{{labels}}} not in /metrics")
    return total


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def readyz(server: ServerProcess) -> tuple[int, str]:
    return http_get(server, "/readyz")


@functools.lru_cache(maxsize=4)
def slow_dicom(seed: int, items: int = 30_000) -> bytes:
    """An object with ``items`` sequence items: about 2 s of work in one worker process.

    Built once per test session (building it costs about as much as processing it).
    """
    from tests.support import synthetic

    return synthetic.make_large_sequences(seed, items=items).data
