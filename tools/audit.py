#!/usr/bin/env python3
"""Audit the pinned dependency set for known vulnerabilities (run by ``make test``).

    .venv/bin/python tools/audit.py                 # fail on a known vulnerability
    .venv/bin/python tools/audit.py --require-data  # also fail when nothing could be audited

Runs ``pip-audit`` (pinned in requirements/dev.txt) against exactly the
hash-pinned files the product installs, and reads its JSON. Why a wrapper and
not the bare command: pip-audit exits 0 when the index has no vulnerability
data for a package ("could not be audited"), which on a mirror without that
data means every package. A silent 0 would read as "clean"; this script says
how many packages were really checked, fails on any vulnerability found, and
with ``--require-data`` (for a CI that can reach PyPI's vulnerability data)
also fails when some package could not be checked.

Exit codes: 0 no known vulnerability, 1 vulnerabilities found, 2 the audit
could not run or (with ``--require-data``) was incomplete.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ("requirements/runtime.txt", "requirements/dev.txt")
#: pip-audit asks the index once per package; 92 packages take about 8 s here
TIMEOUT_SECONDS = 600


def run_pip_audit(python: str) -> dict:
    """pip-audit's JSON report for the pinned files (no resolution: the pins are the set)."""
    command = [python, "-m", "pip_audit", "--no-deps", "--disable-pip", "--format", "json", "--progress-spinner", "off"]
    for path in REQUIREMENTS:
        command += ["-r", str(ROOT / path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    if result.returncode not in (0, 1):  # 1 = vulnerabilities found, still a JSON report
        raise RuntimeError(f"pip-audit exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def summarise(report: dict) -> tuple[list[str], int, int]:
    """(one line per vulnerability, packages audited, packages that could not be audited)."""
    findings: list[str] = []
    audited = skipped = 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped += 1
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            findings.append(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixed})")
    return findings, audited, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require-data", action="store_true",
                        help="fail when any pinned package could not be audited")
    args = parser.parse_args(argv)
    try:
        report = run_pip_audit(sys.executable)
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"audit: could not run pip-audit: {exc}", file=sys.stderr)
        return 2
    findings, audited, skipped = summarise(report)
    for line in findings:
        print(f"audit: VULNERABLE {line}")
    print(f"audit: {audited} pinned packages audited, {len(findings)} known vulnerabilities; "
          f"{skipped} could not be audited (the index gave no vulnerability data for them)")
    if findings:
        return 1
    if skipped and args.require_data:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
