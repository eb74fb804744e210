#!/usr/bin/env python3
"""Run every benchmark of the project in one go and write one Markdown report.

    .venv/bin/python benchmarks/report/run.py            # every benchmarks/*/run.py, default sizes
    .venv/bin/python benchmarks/report/run.py --quick    # smaller sizes (about 10 minutes)
    .venv/bin/python benchmarks/report/run.py --only load,fuzz

Writes ``benchmarks/results/REPORT.md`` (committed, so the README can link
the latest figures; raw outputs in ``benchmarks/results/report-logs/``,
git-ignored) with the machine it ran
on (CPU model, cores, RAM, OS, Python, Tesseract, Squid), a summary table
(status, wall time, headline) and, per benchmark, its tables as Markdown
plus derived icapdlp ÷ peer ratios, and its full output in a folded block.
A benchmark that fails (non-zero exit, timeout, crash, missing script) is
reported as failed and the run continues. Exit code: the number of failed
benchmarks (0 when all passed).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report.tables import extract_tables, ratios, to_markdown  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: order of the report; any other benchmarks/*/run.py is appended in name order
ORDER = ("icap_passthrough", "squid_e2e", "deid_headers", "payloads", "burned_in", "load", "fuzz")
#: smaller sizes for --quick (each script's own flags)
QUICK_ARGS = {
    "icap_passthrough": "--duration 2",
    "squid_e2e": "--duration 2 --rounds 1",
    "deid_headers": "--ct 10 --multiframe 2 --sequences 3",
    "payloads": "--mib 50 --instances 20",
    "burned_in": "--images 8",
    "load": "--seconds 20 --connections 20 --ocr-seconds 8 --squid-seconds 10",
    "fuzz": "--minutes 0.5",
}
#: the fuzz campaign is open-ended; the report gives it a fixed budget
DEFAULT_ARGS = {"fuzz": "--minutes 3"}
#: one benchmark may take this long before it is stopped and reported as failed
TIMEOUT_SECONDS = 30 * 60


@dataclass
class Outcome:
    name: str
    status: str  # passed | failed (exit N) | timeout | missing
    seconds: float
    output: str
    command: str


def discover() -> list[str]:
    found = sorted(p.parent.name for p in (ROOT / "benchmarks").glob("*/run.py") if p.parent.name != "report")
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def machine() -> list[str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    model = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    os_name = next((line.split("=", 1)[1].strip('"') for line in read("/etc/os-release").splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())

    def version(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            text = (done.stdout + done.stderr).strip().splitlines()
            return text[0] if text else "unknown"
        except (OSError, subprocess.TimeoutExpired):
            return "not installed"

    return [
        "| | |", "|---|---|",
        f"| CPU | {model} |",
        f"| cores | {os.cpu_count()} |",
        f"| RAM | {mem_kb / 1024 / 1024:.1f} GiB |",
        f"| OS | {os_name}, kernel {platform.release()} |",
        f"| Python | {platform.python_version()} |",
        f"| Tesseract | {version(['tesseract', '--version'])} |",
        f"| Squid | {version(['/usr/sbin/squid', '-v'])} |",
        f"| commit | {version(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'])} |",
    ]


def run_one(name: str, extra: str, timeout: float) -> Outcome:
    script = ROOT / "benchmarks" / name / "run.py"
    command = [sys.executable, str(script), *shlex.split(extra)]
    shown = " ".join(["python", f"benchmarks/{name}/run.py", *shlex.split(extra)])
    if not script.exists():
        return Outcome(name, "missing", 0.0, "", shown)
    started = time.monotonic()
    print(f"== {shown}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output = done.stdout + ("\n--- stderr ---\n" + done.stderr[-4000:] if done.stderr.strip() else "")
        status = "passed" if done.returncode == 0 else f"failed (exit {done.returncode})"
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or ""
        output = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        status = f"timeout ({timeout:.0f} s)"
    except OSError as exc:
        output, status = f"{type(exc).__name__}: {exc}", "failed (could not start)"
    return Outcome(name, status, time.monotonic() - started, output, shown)


def headline(outcome: Outcome) -> str:
    """The last short line that reads like a conclusion (speed-up, target, PASS/FAIL, campaign size)."""
    keys = ("speed-up", "target", "PASS", "FAIL", "Fuzz campaign", "ratio")
    lines = [line.strip() for line in outcome.output.split("--- stderr ---")[0].splitlines()
             if line.strip() and not line.lstrip().startswith(("|", "**", "-"))
             and line.count("  ") < 2]  # not a row of a fixed-width table
    if lines and any(k in lines[0] for k in ("PASS", "FAIL", "Fuzz campaign")):
        return lines[0].replace("|", "/")[:220]
    for line in reversed(lines):
        if any(k in line for k in keys):
            return line.replace("|", "/")[:220]
    return ""


def section(outcome: Outcome) -> list[str]:
    lines = [f"## {outcome.name}", "",
             f"`{outcome.command}` — {outcome.status}, {outcome.seconds:.0f} s", ""]
    body = outcome.output.split("--- stderr ---")[0]
    for table in extract_tables(body):
        lines += [to_markdown(table), ""]
        derived = ratios(table)
        if derived:
            lines += ["Ratios, icapdlp ÷ peer (same column, same group):", "", to_markdown(derived), ""]
    lines += ["<details><summary>full output</summary>", "", "```", outcome.output.strip()[-20000:], "```",
              "", "</details>", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for every benchmark")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                        help='extra arguments for one benchmark, e.g. --args "load=--seconds 120"')
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="per benchmark, seconds")
    parser.add_argument("--out", type=Path, default=RESULTS / "REPORT.md")
    args = parser.parse_args(argv)

    names = discover()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        names = [n for n in wanted]  # a name without a script is reported as missing
    overrides = dict(item.split("=", 1) for item in args.args)
    outcomes = []
    logs = args.out.parent / "report-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name in names:
        extra = overrides.get(name, QUICK_ARGS.get(name, "") if args.quick else DEFAULT_ARGS.get(name, ""))
        outcome = run_one(name, extra, args.timeout)
        (logs / f"{name}.log").write_text(f"$ {outcome.command}\n{outcome.status}\n\n{outcome.output}")
        outcomes.append(outcome)

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# icapdlp benchmark report ({stamp})", "", "Measured on:", "", *machine(), "",
             "| benchmark | status | wall time | headline |", "|---|---|---:|---|"]
    lines += [f"| [{o.name}](#{o.name.replace('_', '_')}) | {o.status} | {o.seconds:.0f} s | {headline(o)} |"
              for o in outcomes]
    lines.append("")
    for o in outcomes:
        lines += section(o)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return sum(o.status != "passed" for o in outcomes)


if __name__ == "__main__":
    sys.exit(main())
