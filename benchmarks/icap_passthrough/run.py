#!/usr/bin/env python3
"""icapdlp vs c-icap (srv_echo) on loopback: no-change requests/s and latency, side by side.

Starts both servers on free 127.0.0.1 ports, drives each with the same load
generator (``loadgen.py``: uvloop, persistent connections) and prints one
table with the ratio icapdlp / c-icap. Cases:

  a  get-preview0     REQMOD GET, Preview: 0, null-body (Squid's shape for a GET)
  b  1k-preview-204   REQMOD POST with a 1 KiB body inside a 4 KiB preview (ieof)
  c  1m-body          RESPMOD with a 1 MiB non-DICOM body, 4 KiB preview, no Allow: 204

c-icap's echo service answers every other previewed request with 100 Continue
and a full echo (see srv_echo.c); icapdlp answers "not DICOM" with 204 from the
preview. The table shows which status codes each server produced.

The "bare req/s" column is ``bare_responder.py``: a uvloop server that
writes a fixed 204 per request and parses nothing, i.e. what one Python
process can do here with zero work per request (cases a and b only; on by
default, ``--no-floor`` leaves it out).

c-icap runs tuned for throughput, as a deployment would run it: no limit on
requests per connection (``MaxKeepAliveRequests 0``; Debian's default closes
each connection after 100) and 2 servers x 40 threads, more than the 32
connections the load generator opens.

Usage: .venv/bin/python benchmarks/icap_passthrough/run.py [--duration 5] [--adapter auto] [--no-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CICAP_MODULES = Path("/usr/lib/x86_64-linux-gnu/c_icap")
CASES = {"a": "get-preview0", "b": "1k-preview-204", "c": "1m-body"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_cicap(work: Path, port: int, max_keepalive_requests: int = 0) -> subprocess.Popen:
    """c-icap with srv_echo, tuned for throughput as a deployment would run it.

    ``max_keepalive_requests`` 0 keeps every connection open (Debian's
    default, 100, closes it after 100 requests and the load generator would
    count reconnections); 2 servers x 40 threads serve 32 connections at once.
    """
    binary = shutil.which("c-icap")
    if binary is None:
        sys.exit("c-icap not found: apt-get install c-icap")
    conf = work / "c-icap.conf"
    conf.write_text(f"""PidFile {work}/c-icap.pid
CommandsSocket {work}/c-icap.ctl
Timeout 300
MaxKeepAliveRequests {max_keepalive_requests}
KeepAliveTimeout 600
StartServers 2
MaxServers 4
MinSpareThreads 10
MaxSpareThreads 40
ThreadsPerChild 40
MaxRequestsPerChild 0
Port 127.0.0.1:{port}
TmpDir {work}
MaxMemObject 131072
DebugLevel 0
Pipelining on
ModulesDir {CICAP_MODULES}
ServicesDir {CICAP_MODULES}
ServerLog {work}/c-icap-server.log
Service echo srv_echo.so
""")
    process = subprocess.Popen([binary, "-N", "-f", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=open(work / "c-icap.stderr", "wb"))
    wait_for_port(port, process)
    return process


def start_icapdlp(work: Path, port: int, adapter: str, acceptors: int) -> subprocess.Popen:
    key = work / "bench.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (secrets.token_hex(32) + "\n").encode())
    os.close(fd)
    config = work / "icapdlp.toml"
    config.write_text(f"""[server]
host = "127.0.0.1"
port = {port}
{"" if acceptors is None else f"acceptors = {acceptors}"}
[limits]
max_connections = 2000
[workers]
processes = 1
[audit]
destination = "off"
[metrics]
port = {free_port()}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICAPDLP_")}
    env.update({"ICAPDLP_KEY__FILE": str(key), "PYTHONPATH": str(ROOT)})
    entry = ["-m", "icapdlp.cli.serve"] if adapter == "real" else [str(HERE / "passthrough_serve.py")]
    process = subprocess.Popen([sys.executable, *entry, "--config", str(config)], env=env, cwd=work,
                               stdout=subprocess.DEVNULL, stderr=open(work / "icapdlp.stderr", "wb"))
    wait_for_port(port, process)
    return process


def start_bare(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(HERE / "bare_responder.py"), "--port", str(port)],
                               stdout=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process


def measure(port: int, case: str, service_req: str, service_resp: str, args, server_pid: int | None = None) -> dict:
    per_proc = max(1, args.connections // args.loadgen_procs)
    command = [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--case", case,
               "--service-req", service_req, "--service-resp", service_resp, "--connections", str(per_proc),
               "--warmup", str(args.warmup), "--duration", str(args.duration)]
    before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    result = summarise(run_load([command] * args.loadgen_procs, args.warmup + args.duration + 120))
    if server_pid and result["completed"]:
        result["cpu_ms"] = 1000 * (tree_cpu_seconds(server_pid) - before) / result["completed"]
    return result


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (icapdlp's workers, c-icap's children).

    Why: on a shared machine req/s moves with other load; the CPU a server
    spends per request moves far less, so "no slower than" is judged on it.
    """
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, ()))
    return total


def run_load(commands: list[list[str]], timeout: float) -> list[dict]:
    """Run load generators at once, each with ``--out FILE``; their JSON results.

    A file, not a stdout pipe: a result holds every latency (megabytes), and
    one read from a pipe once failed to parse at its 128 KiB mark (seen once
    in 2026-12 on a loaded machine, not reproduced); a file leaves the pipe out.
    """
    with tempfile.TemporaryDirectory(prefix="icap-load-") as tmp:
        outs = [Path(tmp) / f"load-{i}.json" for i in range(len(commands))]
        procs = [subprocess.Popen([*command, "--out", str(out)]) for command, out in zip(commands, outs)]
        deadline = time.monotonic() + timeout
        for process in procs:
            try:
                process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for other in procs:
                    stop(other)
                raise RuntimeError("load generator did not finish in time") from None
        failed = [p.returncode for p in procs if p.returncode != 0]
        if failed:
            raise RuntimeError(f"load generator exited with {failed}")
        return [json.loads(out.read_text()) for out in outs]


def summarise(results: list[dict]) -> dict:
    """One cell from the JSON lines of its load processes: req/s, p50, p99, status counts, errors."""
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: dict[str, int] = {}
    for r in results:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    seconds = statistics.mean(r["seconds"] for r in results)
    return {
        "rps": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
        "statuses": statuses,
        "errors": sum(r["errors"] for r in results),
        "completed": sum(r.get("completed", 0) for r in results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per case and server")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen-procs", type=int, default=1)
    parser.add_argument("--cases", default="abc", help="subset of a, b, c")
    parser.add_argument("--adapter", choices=("auto", "real", "passthrough"), default="auto",
                        help="icapdlp's adapter: the real DICOM one (auto, real) or pass-through")
    parser.add_argument("--acceptors", type=int, default=None,
                        help="icapdlp acceptor processes (SO_REUSEPORT); 0 = one per core")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="measure bare_responder.py (a fixed 204, no parsing) on cases a and b "
                             "(default on; --no-floor skips it)")
    args = parser.parse_args()
    adapter = args.adapter
    if adapter == "auto":
        adapter = "real"  # the DICOM adapter is part of the package; "auto" stays for old command lines
    work = Path(tempfile.mkdtemp(prefix="icap-bench-"))
    icap_port, cicap_port = free_port(), free_port()
    servers = []
    try:
        servers.append(start_icapdlp(work, icap_port, adapter, args.acceptors))
        servers.append(start_cicap(work, cicap_port))
        bare_port = free_port() if args.floor else None
        if bare_port is not None:
            servers.append(start_bare(bare_port))
        rows = []
        for letter in args.cases:
            case = CASES[letter]
            ours = measure(icap_port, case, "deid-req", "deid-resp", args, servers[0].pid)
            theirs = measure(cicap_port, case, "echo", "echo", args, servers[1].pid)
            bare = measure(bare_port, case, "x", "x", args) if bare_port is not None and letter in "ab" else None
            rows.append((letter, case, ours, theirs, bare))
    finally:
        for process in servers:
            stop(process)
    print(f"\nicapdlp ({adapter} adapter, acceptors={args.acceptors if args.acceptors is not None else '1 (default)'}) vs c-icap "
          f"{cicap_version()} srv_echo; {args.connections} persistent connections, "
          f"{args.loadgen_procs} load process(es), {args.duration:g} s per cell, {os.cpu_count()} cores\n")
    floor = f" {'bare req/s':>10}" if args.floor else ""
    header = (f"{'case':<20} {'icapdlp req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'c-icap req/s':>13} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}{floor} {'CPU ms/req':>16}  statuses icapdlp | c-icap")
    print(header)
    print("-" * len(header))
    for letter, case, ours, theirs, bare in rows:
        ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else float("nan")
        floor = "" if not args.floor else f" {bare['rps']:>10,.0f}" if bare else f" {'-':>10}"
        print(f"{letter + ') ' + case:<20} {ours['rps']:>13,.0f} {ours['p50_ms']:>7.2f} {ours['p99_ms']:>7.2f} "
              f"{theirs['rps']:>13,.0f} {theirs['p50_ms']:>7.2f} {theirs['p99_ms']:>7.2f} {ratio:>6.2f}{floor} "
              f"{_cpu(ours):>7} | {_cpu(theirs):<6}  {_codes(ours)} | {_codes(theirs)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _cpu(result: dict) -> str:
    """CPU milliseconds per request of the server's process tree (live processes only)."""
    return f"{result['cpu_ms']:.3f}" if "cpu_ms" in result else "-"


def _codes(result: dict) -> str:
    codes = ",".join(f"{k}:{v}" for k, v in sorted(result["statuses"].items()))
    return codes + (f" errors:{result['errors']}" if result["errors"] else "")


def cicap_version() -> str:
    try:
        out = subprocess.run(["c-icap", "-V"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).strip().split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
