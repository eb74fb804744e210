"""Drive icapdlp directly over raw ICAP from many concurrent persistent connections.

Each connection loops for the phase's duration: pick a request from the mix,
send it (preview + 100 Continue as Squid does), read the whole answer, judge
it, record the latency under its class. A connection that fails is reopened
and the failure counted as an error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

from benchmarks.load.mix import Item, judge, pick
from tests.faults.icap_client import IcapConnection

#: seconds one request may take before it counts as an error (OCR under full load included)
REQUEST_TIMEOUT = 60.0


@dataclass
class PhaseStats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    blocked_reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())

    def merge(self, other: "PhaseStats") -> None:
        for k, v in other.latencies.items():
            self.latencies[k] += v
        for src, dst in ((other.errors, self.errors), (other.error_kinds, self.error_kinds),
                         (other.blocked_reasons, self.blocked_reasons)):
            for k, v in src.items():
                dst[k] += v


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _connection_loop(port: int, pools, weights, stop_at: float, rng: random.Random,
                           stats: PhaseStats) -> None:
    conn: IcapConnection | None = None
    while time.monotonic() < stop_at:
        item: Item = pick(rng, pools, weights)
        started = time.perf_counter()
        try:
            if conn is None:
                conn = await IcapConnection.open(port)
            reply = await conn.send(item.method, item.service, item.http_head, item.body,
                                    res_head=item.res_head, preview=4096, allow="204",
                                    timeout=REQUEST_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            stats.errors[item.cls] += 1
            stats.error_kinds[f"{item.cls}: {type(exc).__name__}"] += 1
            if conn is not None:
                await conn.close()
            conn = None
            continue
        elapsed = time.perf_counter() - started
        problem = judge(item, reply)
        if problem:
            stats.errors[item.cls] += 1
            stats.error_kinds[problem] += 1
        else:
            stats.latencies[item.cls].append(elapsed)
            if reply.block_reason:
                stats.blocked_reasons[reply.block_reason] += 1
        if reply.headers.get("connection", "").lower() == "close" or reply.block_reason:
            await conn.close()  # a block may close the connection (unread body)
            conn = None
    if conn is not None:
        await conn.close()


async def run_phase(port: int, pools, weights: dict[str, int], seconds: float, connections: int,
                    seed: int) -> PhaseStats:
    stats = PhaseStats()
    stop_at = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(*(_connection_loop(port, pools, weights, stop_at, random.Random(seed * 1000 + i),
                                            stats) for i in range(connections)))
    stats.seconds = time.monotonic() - started
    return stats


async def run_phases(port: int, pools, groups: list[tuple[dict[str, int], int]], seconds: float,
                     seed: int) -> list[PhaseStats]:
    """Several groups of connections with different mixes, at the same time."""
    return list(await asyncio.gather(*(run_phase(port, pools, weights, seconds, n, seed + g)
                                       for g, (weights, n) in enumerate(groups))))
