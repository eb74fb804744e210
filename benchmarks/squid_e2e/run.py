#!/usr/bin/env python3
"""Squid end to end: 1 KiB non-DICOM uploads through Squid 5.7 with icapdlp, with c-icap, and with no ICAP.

One Squid, rendered from ``squid-examples/upload-download.conf``, listens on
three loopback ports. Uploads arriving on the first go to icapdlp as the
REQMOD service, on the second to c-icap's ``srv_echo``, on the third to no
ICAP service at all (the ceiling: Squid and the origin alone). Both services
are declared as the example declares icapdlp (``bypass=off``) and get the
example's ``adaptation_access`` rules, restricted to their port. The same
load client (``http_loadgen.py``, uvloop, persistent connections) posts the
same 1 KiB body to a local origin (``origin.py``) through each port in turn,
``--rounds`` times with the order rotated, and the script prints one table:
req/s, p50, p99 per column, the ratio icapdlp / c-icap, and the HTTP status
counts. RESPMOD is off for all three (the example would also send the
origin's answers to icapdlp); this measures the upload path.

Checks (exit code 1 when one fails, so a benchmark of errors cannot pass as
a fast one): every answer the client got is HTTP 200, no connection failed,
the origin received exactly as many intact uploads as the client got
answers (warm-up included), and nothing else, and Squid's icap.log has one
REQMOD per upload at the column's own service and none for the no-ICAP column.

Usage: .venv/bin/python benchmarks/squid_e2e/run.py [--duration 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.icap_passthrough.run import (  # noqa: E402
    cicap_version,
    free_port,
    run_load,
    start_cicap,
    start_icapdlp,
    stop,
    summarise,
    wait_for_port,
)
from icapdlp.observability.processes import _stat, descendants  # noqa: E402  (the server's own /proc reader)
from tests.support.squid import (  # noqa: E402
    SQUID,
    EXAMPLES,
    SquidProxy,
    example_log_substitutions,
    harness_overrides,
    icap_outcomes,
    make_shared_dir,
    render_example,
)

EXAMPLE = "upload-download.conf"
#: the three columns, in the table's order: (label, Squid port name)
COLUMNS = (("icapdlp", "icapdlp"), ("c-icap", "cicap"), ("no-ICAP", "none"))
#: Squid's name for the c-icap REQMOD service (the example's icapdlp one is deid_req)
CICAP_SERVICE = "cicap_req"
EXPECTED_STATUS = 200


def squid_config(workdir: Path, ports: dict[str, int], icapdlp_port: int, cicap_port: int) -> str:
    """The shipped example with three named http_ports and the c-icap service beside icapdlp's."""
    example = (EXAMPLES / EXAMPLE).read_text().splitlines()
    (service,) = [line for line in example if line.startswith("icap_service deid_req ")]
    access = [line for line in example if line.startswith("adaptation_access deid_req ")]
    if "bypass=off" not in service or not access:
        raise AssertionError(f"{EXAMPLE} no longer declares deid_req as this benchmark expects")
    cicap_service = service.replace("deid_req", CICAP_SERVICE).replace(
        "icap://127.0.0.1:1344/deid-req", f"icap://127.0.0.1:{cicap_port}/echo")
    routing = [f"acl bench_port_{name} myportname {name}" for _, name in COLUMNS]
    routing += ["adaptation_access deid_req deny !bench_port_icapdlp", *access,
                f"adaptation_access {CICAP_SERVICE} deny !bench_port_cicap",
                *(line.replace("deid_req", CICAP_SERVICE) for line in access)]
    return render_example(
        EXAMPLE,
        replace_lines={
            "http_port": [f"http_port 127.0.0.1:{ports[name]} name={name}" for _, name in COLUMNS],
            "icap_service deid_req ": [service, cicap_service],
            "adaptation_access deid_req ": routing,
            "adaptation_access deid_resp ": ["adaptation_access deid_resp deny all"],
        },
        substitutions=[*example_log_substitutions(workdir),
                       ("icap://127.0.0.1:1344/", f"icap://127.0.0.1:{icapdlp_port}/")],
        append=harness_overrides(workdir),
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a live process and all below it (c-icap's children, Squid's helpers)."""
    return sum(s[0] for s in map(_stat, [pid, *descendants(pid)]) if s is not None)


def client_cpu_seconds() -> float:
    """CPU time of this script's reaped children: the load clients, each waited for when its cell ends."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def origin_counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as reply:  # direct, no proxy
        return json.loads(reply.read())


def measure(proxy_port: int, origin_port: int, parts: dict[str, int], args) -> dict:
    """One cell: the load client against one Squid port, what the origin counted meanwhile, and the
    CPU seconds each part (``parts``: name -> PID, plus the client) spent on it."""
    before = origin_counts(origin_port)
    cpu_before = {name: cpu_seconds(pid) for name, pid in parts.items()} | {"client": client_cpu_seconds()}
    wall = time.monotonic()
    (raw,) = run_load([[sys.executable, str(HERE / "http_loadgen.py"), "--proxy-port", str(proxy_port),
                        "--origin-port", str(origin_port), "--connections", str(args.connections),
                        "--warmup", str(args.warmup), "--duration", str(args.duration)]],
                      args.warmup + args.duration + 120)
    wall = time.monotonic() - wall
    cell = summarise([raw])
    cell.update(latencies=raw["latencies"], seconds=raw["seconds"])  # for the pooled row
    cpu_after = {name: cpu_seconds(pid) for name, pid in parts.items()} | {"client": client_cpu_seconds()}
    cell["cpu"] = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    cell["wall"] = wall
    after = origin_counts(origin_port)
    cell["origin"] = {k: after[k] - before[k] for k in after}
    cell["problems"] = problems(cell)
    return cell


def problems(cell: dict) -> list[str]:
    """Why a cell does not measure successful uploads (empty when it does)."""
    found = []
    wrong = {code: n for code, n in cell["statuses"].items() if int(code) != EXPECTED_STATUS}
    if wrong or not cell["statuses"]:
        found.append(f"HTTP statuses other than {EXPECTED_STATUS}: {wrong or 'no answers'}")
    if cell["errors"]:
        found.append(f"{cell['errors']} connection(s) lost")
    if cell["origin"]["intact"] != cell["completed"] or cell["origin"]["other"]:
        found.append(f"origin got {cell['origin']['intact']} intact uploads and {cell['origin']['other']} "
                     f"other requests for {cell['completed']} answers")
    return found


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def squid_version() -> str:
    out = subprocess.run([SQUID, "-v"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"Version (\S+)", out)
    return match.group(1) if match else "?"


def table(rounds: list[dict[str, dict]]) -> list[str]:
    header = (f"{'round':<6} {'icapdlp req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'c-icap req/s':>13} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'no-ICAP req/s':>13} {'p50 ms':>7} {'p99 ms':>7}  "
              "HTTP statuses icapdlp/c-icap/no-ICAP")
    lines = [header, "-" * len(header)]
    for name, cells in [(str(i + 1), r) for i, r in enumerate(rounds)] + [("all", pooled(rounds))]:
        ours, theirs, none = (cells[label] for label, _ in COLUMNS)
        ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else float("nan")
        lines.append(
            f"{name:<6} {ours['rps']:>13,.0f} {ours['p50_ms']:>7.2f} {ours['p99_ms']:>7.2f} "
            f"{theirs['rps']:>13,.0f} {theirs['p50_ms']:>7.2f} {theirs['p99_ms']:>7.2f} {ratio:>6.2f} "
            f"{none['rps']:>13,.0f} {none['p50_ms']:>7.2f} {none['p99_ms']:>7.2f}  "
            f"{_codes(ours)}/{_codes(theirs)}/{_codes(none)}")
    return lines


#: the parts whose CPU time is counted per upload, in the CPU table's order
CPU_PARTS = ("Squid", "ICAP server", "origin", "client")


def cpu_table(rounds: list[dict[str, dict]]) -> list[str]:
    """CPU microseconds per upload of each part, all rounds together, and how busy Squid and the client were.

    On a shared machine CPU time per upload is steadier than req/s, and a
    part near 100 % of one core (Squid and the client are single-threaded)
    is the limit of its column.
    """
    header = (f"{'CPU us/upload':<18}" + "".join(f" {part:>11}" for part in CPU_PARTS)
              + f" {'total':>8} {'uploads':>9} {'Squid busy':>10} {'client busy':>11}")
    lines = [header, "-" * len(header)]
    for label, _ in COLUMNS:
        cells = [r[label] for r in rounds]
        uploads = sum(c["completed"] for c in cells)
        per = {part: 1e6 * sum(c["cpu"].get(part, 0.0) for c in cells) / max(uploads, 1)
               for part in CPU_PARTS}
        wall = sum(c["wall"] for c in cells)
        busy = {part: sum(c["cpu"][part] for c in cells) / wall for part in ("Squid", "client")}
        row = "".join(f" {per[part]:>11.0f}" if part in cells[0]["cpu"] else f" {'-':>11}"
                      for part in CPU_PARTS)
        lines.append(f"{label:<18}{row} {sum(per.values()):>8.0f} {uploads:>9,} {busy['Squid']:>10.0%} "
                     f"{busy['client']:>11.0%}")
    return lines


def pooled(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Every round of a column as one cell: requests over seconds, percentiles over all latencies."""
    out = {}
    for label, _ in COLUMNS:
        cells = [r[label] for r in rounds]
        merged = summarise(cells)
        merged["rps"] = sum(len(c["latencies"]) for c in cells) / sum(c["seconds"] for c in cells)
        out[label] = merged
    return out


def _codes(cell: dict) -> str:
    codes = ",".join(f"{k}:{v}" for k, v in sorted(cell["statuses"].items()))
    return codes + (f" errors:{cell['errors']}" if cell["errors"] else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each cell counts")
    parser.add_argument("--rounds", type=int, default=3, help="each round measures all three columns")
    parser.add_argument("--connections", type=int, default=32, help="persistent client connections to Squid")
    parser.add_argument("--adapter", choices=("auto", "real", "passthrough"), default="auto",
                        help="icapdlp's adapter: the real DICOM one (auto, real) or pass-through")
    args = parser.parse_args(argv)
    adapter = "real" if args.adapter == "auto" else args.adapter

    work = Path(tempfile.mkdtemp(prefix="squid-e2e-bench-"))
    squid_dir = make_shared_dir("squid-e2e-squid-")
    processes: list[subprocess.Popen] = []
    proxy: SquidProxy | None = None
    rounds: list[dict[str, dict]] = []
    loads = [load_average()]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        origin_port, icapdlp_port, cicap_port = free_port(), free_port(), free_port()
        origin = subprocess.Popen([sys.executable, str(HERE / "origin.py"), "--port", str(origin_port)],
                                  stdout=subprocess.DEVNULL)
        processes.append(origin)
        wait_for_port(origin_port, origin)
        icapdlp = start_icapdlp(work, icapdlp_port, adapter, None)
        processes.append(icapdlp)
        cicap = start_cicap(work, cicap_port)
        processes.append(cicap)
        ports = {name: free_port() for _, name in COLUMNS}
        proxy = SquidProxy(squid_config(squid_dir, ports, icapdlp_port, cicap_port), squid_dir,
                           ports[COLUMNS[0][1]]).start()
        for _, name in COLUMNS[1:]:
            wait_for_port(ports[name], proxy.process)
        parts = {"icapdlp": {"ICAP server": icapdlp.pid}, "c-icap": {"ICAP server": cicap.pid}, "no-ICAP": {}}
        for label in parts:
            parts[label].update({"Squid": proxy.process.pid, "origin": origin.pid})
        for index in range(args.rounds):
            order = COLUMNS[index % 3:] + COLUMNS[:index % 3]  # rotate who goes first
            rounds.append({label: measure(ports[name], origin_port, parts[label], args)
                           for label, name in order})
            loads.append(load_average())
        uploads = {label: sum(r[label]["completed"] for r in rounds) for label, _ in COLUMNS}
        # Squid appends a line per ICAP transaction when it ends: wait until the REQMODs are all there
        icap_lines = proxy.wait_icap_log(uploads["icapdlp"] + uploads["c-icap"])
    finally:
        if proxy is not None:
            proxy.cleanup()
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nSquid {squid_version()} end to end ({started}): 1 KiB non-DICOM POST through Squid to a local "
          f"origin; REQMOD by icapdlp ({adapter} adapter) | c-icap {cicap_version()} srv_echo | no ICAP; "
          f"bypass=off; {args.connections} persistent client connections, 1 load process, "
          f"{args.duration:g} s per cell, {args.rounds} round(s) interleaved, {os.cpu_count()} cores\n")
    for line in table(rounds):
        print(line)
    print()
    for line in cpu_table(rounds):
        print(line)
    print(f"\nICAP outcomes in Squid's icap.log (warm-up included): icapdlp "
          f"{_outcome_counts(icap_lines, '/deid-req')} | c-icap {_outcome_counts(icap_lines, '/echo')}")
    print(f"load average (1/5/15 min) at start and after each round: {' -> '.join(loads)}")
    all_cells = pooled(rounds)
    ceiling = all_cells["no-ICAP"]["rps"] / max(all_cells["icapdlp"]["rps"], all_cells["c-icap"]["rps"], 1e-9)
    client_busy = max(sum(c["cpu"]["client"] for c in cells) / sum(c["wall"] for c in cells)
                      for cells in ([r[label] for r in rounds] for label, _ in COLUMNS))
    print(f"ceiling check: no-ICAP throughput is {ceiling:.2f}x the faster ICAP column; the load client used "
          f"at most {client_busy:.0%} of one core"
          + ("" if ceiling >= 1.2 and client_busy < 0.8 else
             " (no clear ceiling: the client, the origin or the machine's other load limits every column)"))
    found = [f"round {i + 1} {label}: {p}" for i, r in enumerate(rounds) for label, c in r.items()
             for p in c["problems"]]
    found += routing_problems(icap_lines, uploads)
    theirs = all_cells["c-icap"]["rps"]
    ratio = all_cells["icapdlp"]["rps"] / theirs if theirs else float("nan")
    print(f"ratio icapdlp / c-icap over all rounds: {ratio:.2f} (target >= 0.95)")
    if found:
        print("FAIL: " + "; ".join(found))
        return 1
    print("every upload answered 200 and reached the origin intact")
    return 0


#: the path of each column's REQMOD service in Squid's icap.log (None: no service)
SERVICE_PATHS = {"icapdlp": "/deid-req", "c-icap": "/echo"}


def routing_problems(icap_lines: list[str], uploads: dict[str, int]) -> list[str]:
    """Each ICAP column's uploads each went to its own service once, and the no-ICAP column's to none.

    Squid's icap.log is the witness: the REQMOD lines per service must equal
    the uploads of that column (warm-up included), so a routing rule that sent
    a column elsewhere, or skipped ICAP, shows here.
    """
    found = []
    total = 0
    for label, path in SERVICE_PATHS.items():
        reqmods = sum(1 for method, _, _ in icap_outcomes(icap_lines, path) if method == "REQMOD")
        total += reqmods
        if reqmods != uploads[label]:
            found.append(f"{label}: {reqmods} REQMOD transactions in icap.log for {uploads[label]} uploads")
    every = sum(1 for method, _, _ in icap_outcomes(icap_lines) if method == "REQMOD")
    if every != total:
        found.append(f"{every - total} REQMOD transactions went to neither service")
    return found


def _outcome_counts(lines: list[str], service_path: str) -> str:
    counts: dict[str, int] = {}
    for method, outcome, status in icap_outcomes(lines, service_path):
        key = f"{method} {outcome}/{status}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}:{v}" for k, v in sorted(counts.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
