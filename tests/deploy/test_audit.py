"""tools/audit.py: a known vulnerability fails the build; "could not be audited" is never read as clean."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("audit", Path(__file__).resolve().parents[2] / "tools" / "audit.py")
audit = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(audit)

CLEAN = {"name": "pydicom", "version": "3.0.2", "vulns": []}
SKIPPED = {"name": "uvloop", "version": "0.23.0", "skip_reason": "Dependency not found on PyPI"}
VULNERABLE = {"name": "jinja2", "version": "2.4", "vulns": [
    {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"], "aliases": [], "description": "sandbox escape"}]}


def test_summary_counts_audited_skipped_and_vulnerabilities():
    findings, audited, skipped = audit.summarise({"dependencies": [CLEAN, SKIPPED, VULNERABLE]})
    assert findings == ["jinja2 2.4: PYSEC-2019-217 (fixed in: 2.10.1)"]
    assert (audited, skipped) == (2, 1)


@pytest.mark.parametrize(("deps", "require_data", "code"), [
    ([CLEAN], False, 0),
    ([CLEAN, VULNERABLE], False, 1),
    ([CLEAN, SKIPPED], False, 0),
    ([CLEAN, SKIPPED], True, 2),      # a CI that can reach the data must not accept a partial audit
    ([SKIPPED, VULNERABLE], True, 1),  # a found vulnerability outranks missing data
])
def test_exit_code(monkeypatch, capsys, deps, require_data, code):
    monkeypatch.setattr(audit, "run_pip_audit", lambda python: {"dependencies": deps})
    assert audit.main(["--require-data"] if require_data else []) == code
    out = capsys.readouterr().out
    assert f"{sum(1 for d in deps if 'skip_reason' in d)} could not be audited" in out


def test_pip_audit_failure_is_exit_2(monkeypatch):
    def broken(python):
        raise RuntimeError("pip-audit exited 2: bad requirement")
    monkeypatch.setattr(audit, "run_pip_audit", broken)
    assert audit.main([]) == 2


def test_real_pip_audit_reads_the_pinned_files():
    """The real pip-audit runs on both pinned files and reports every pinned package (audited or skipped)."""
    report = audit.run_pip_audit(audit.sys.executable)
    pinned = {line.split("==")[0].strip().lower() for path in audit.REQUIREMENTS
              for line in (audit.ROOT / path).read_text().splitlines() if "==" in line and not line.startswith("#")}
    _, audited, skipped = audit.summarise(report)
    assert audited + skipped == len(pinned)
