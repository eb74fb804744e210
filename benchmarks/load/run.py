#!/usr/bin/env python3
"""Load and soak benchmark: icapdlp under a realistic mix, directly and through Squid.

    .venv/bin/python benchmarks/load/run.py                   # default, about 3 minutes
    .venv/bin/python benchmarks/load/run.py --seconds 600     # a 10-minute soak of phase A

Loopback only; bounded in time (every phase has a fixed duration) and in
count (fixed connection numbers). Phases:

A. mixed load over raw ICAP from ``--connections`` persistent connections
   (mostly non-DICOM, some DICOM with and without burned-in text, some
   malformed): requests, errors, p50/p99 per class, server RSS (main +
   workers) after warm-up and at the end, checked against RSS_GROWTH_BOUND_MB.
B. pass-through latency of non-DICOM traffic alone, then while burned-in
   (OCR-heavy) uploads keep every worker busy: p50/p99 both ways.
C. the same mix through a real Squid 5.7 to a recording origin; every DICOM
   the origin received is checked for planted PHI, and no malformed object
   may arrive.

Errors must be 0 for well-formed input (non-DICOM, DICOM, burned-in).
Malformed input must be blocked: one that passes counts as an error.
Exit code 1 on any error, PHI at the origin, or RSS growth above the bound.
Results: stdout and ``benchmarks/results/load/summary.md`` (+ ``results.json``).

The load generator shares the machine's cores with the server and its
workers, so figures are a floor for a dedicated machine, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.load.icap_load import PhaseStats, percentile, run_phase, run_phases  # noqa: E402
from benchmarks.load.mix import WEIGHTS, build_pools, rss_kb_tree  # noqa: E402
from tests.faults.icap_client import IcapConnection  # noqa: E402
from tests.support.processes import start_icapdlp  # noqa: E402

#: RSS (server + workers) may grow at most this much from after warm-up to the end.
#: Warm-up loads the NER model and Tesseract data into every worker; what remains is
#: allocator fragmentation and bounded caches. A leak of one 64x64 DICOM (~20 KiB)
#: per request would exceed it within a few thousand requests.
RSS_GROWTH_BOUND_MB = 96
WELL_FORMED = ("non-dicom", "dicom", "burned-in")
RESULTS = REPO / "benchmarks" / "results" / "load"
SERVER_CONFIG = """
[profile]
clean_pixel_data = true
[limits]
max_connections = 2000
"""


async def warm_up(port: int, pools, workers: int) -> None:
    """One of everything, then one burned-in object per worker at once (NER loads per process)."""
    conn = await IcapConnection.open(port)
    for items in pools.values():
        for item in items:
            await conn.send(item.method, item.service, item.http_head, item.body, res_head=item.res_head)
            if item.cls == "malformed":
                await conn.close()
                conn = await IcapConnection.open(port)
    await conn.close()
    burned = pools["burned-in"][0]

    async def one():
        c = await IcapConnection.open(port)
        try:
            await c.send(burned.method, burned.service, burned.http_head, burned.body)
        finally:
            await c.close()
    await asyncio.gather(*(one() for _ in range(2 * workers)))


def table(title: str, stats: PhaseStats) -> list[str]:
    lines = [f"**{title}** — {stats.requests} requests in {stats.seconds:.0f} s "
             f"({stats.requests / max(stats.seconds, 1e-9):.0f}/s)", "",
             "| class | ok | errors | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|"]
    for cls in (*WELL_FORMED, "malformed"):
        lat = stats.latencies.get(cls, [])
        if not lat and not stats.errors.get(cls):
            continue
        lines.append(f"| {cls} | {len(lat)} | {stats.errors.get(cls, 0)} | "
                     f"{percentile(lat, 50) * 1000:.1f} | {percentile(lat, 99) * 1000:.1f} |")
    if stats.error_kinds:
        lines += ["", "Errors: " + "; ".join(f"{k} x{v}" for k, v in sorted(stats.error_kinds.items()))]
    if stats.blocked_reasons:
        lines += ["", "Blocked (expected, malformed): " +
                  ", ".join(f"{k} x{v}" for k, v in sorted(stats.blocked_reasons.items()))]
    return lines + [""]


def well_formed_errors(stats: PhaseStats) -> int:
    return sum(stats.errors.get(cls, 0) for cls in WELL_FORMED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="phase A duration")
    parser.add_argument("--connections", type=int, default=50, help="phase A concurrent ICAP connections")
    parser.add_argument("--ocr-seconds", type=float, default=20, help="each half of phase B")
    parser.add_argument("--squid-seconds", type=float, default=30, help="phase C duration (0 skips Squid)")
    parser.add_argument("--squid-clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    pools = build_pools(args.seed)
    server = start_icapdlp(SERVER_CONFIG)
    report: list[str] = []
    results: dict = {}
    failures: list[str] = []
    try:
        from benchmarks.load.mix import cpu_count
        workers = cpu_count()
        asyncio.run(warm_up(server.port, pools, workers))
        rss_start = rss_kb_tree(server.pid) / 1024

        a = asyncio.run(run_phase(server.port, pools, WEIGHTS, args.seconds, args.connections, args.seed))
        rss_end = rss_kb_tree(server.pid) / 1024
        report += table(f"A. Mixed load, raw ICAP, {args.connections} connections", a)
        growth = rss_end - rss_start
        report += [f"Server RSS (main + {workers} workers): {rss_start:.0f} MB after warm-up, "
                   f"{rss_end:.0f} MB at the end of phase A (growth {growth:+.0f} MB, "
                   f"bound {RSS_GROWTH_BOUND_MB} MB)", ""]
        if growth > RSS_GROWTH_BOUND_MB:
            failures.append(f"RSS grew {growth:.0f} MB")
        if well_formed_errors(a) or a.errors.get("malformed"):
            failures.append("phase A errors")

        only_plain = {"non-dicom": 1}
        only_ocr = {"burned-in": 1}
        (base,) = asyncio.run(run_phases(server.port, pools, [(only_plain, 4)], args.ocr_seconds,
                                         args.seed + 10))
        loaded, ocr = asyncio.run(run_phases(server.port, pools, [(only_plain, 4), (only_ocr, 2 * workers)],
                                             args.ocr_seconds, args.seed + 20))
        b_lines = ["**B. Pass-through latency (non-DICOM, 4 connections) with and without OCR "
                   "saturation**", "",
                   "| condition | non-DICOM requests | p50 ms | p99 ms | OCR uploads done |",
                   "|---|---:|---:|---:|---:|"]
        conditions = (("no other load", base, 0),
                      (f"{2 * workers} connections of burned-in uploads", loaded,
                       len(ocr.latencies.get("burned-in", []))))
        for label, st, extra in conditions:
            lat = st.latencies.get("non-dicom", [])
            b_lines.append(f"| {label} | {len(lat)} | {percentile(lat, 50) * 1000:.2f} | "
                           f"{percentile(lat, 99) * 1000:.2f} | {extra} |")
        report += b_lines + [""]
        for st in (base, loaded, ocr):
            if well_formed_errors(st):
                failures.append("phase B errors: " + "; ".join(st.error_kinds))
        results["B"] = {"p99_ms_alone": percentile(base.latencies["non-dicom"], 99) * 1000,
                        "p99_ms_with_ocr": percentile(loaded.latencies["non-dicom"], 99) * 1000,
                        "p50_ms_alone": percentile(base.latencies["non-dicom"], 50) * 1000,
                        "p50_ms_with_ocr": percentile(loaded.latencies["non-dicom"], 50) * 1000}

        if args.squid_seconds > 0:
            from benchmarks.load.squid_load import run_squid_phase
            c, origin = run_squid_phase(server.port, pools, WEIGHTS, args.squid_seconds, args.squid_clients,
                                        args.seed + 30)
            report += table(f"C. Mixed load through Squid 5.7 -> origin, {args.squid_clients} clients", c)
            report += [f"Origin check: {origin['dicom_checked']} DICOM uploads received, "
                       f"{origin['dicom_with_phi']} with planted PHI; "
                       f"{origin['malformed_arrived']} malformed uploads reached the origin.", ""]
            results["C"] = {"requests": c.requests, "errors": dict(c.errors), "origin": origin}
            if well_formed_errors(c) or c.errors.get("malformed"):
                failures.append("phase C errors")
            if origin["dicom_with_phi"] or origin["malformed_arrived"]:
                failures.append("PHI or malformed object at the origin")
        results["A"] = {"requests": a.requests, "errors": dict(a.errors), "rss_start_mb": rss_start,
                        "rss_end_mb": rss_end,
                        "p50_ms": {k: percentile(v, 50) * 1000 for k, v in a.latencies.items()},
                        "p99_ms": {k: percentile(v, 99) * 1000 for k, v in a.latencies.items()}}
    finally:
        code = server.stop()
    report.append(f"Server exit code after SIGTERM: {code}")
    verdict = "PASS" if not failures and code == 0 else "FAIL: " + "; ".join(failures or ["exit code"])
    text = "\n".join([f"Load benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {verdict}", ""]
                     + report) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.md").write_text(text)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(text)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
