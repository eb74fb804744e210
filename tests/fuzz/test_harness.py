"""The fuzz harness must itself classify outcomes correctly, or every fuzz test is vacuous."""

from __future__ import annotations

import signal

from icapdlp.verdict import Blocked, BlockReason
from tests.fuzz.harness import run_case


def test_a_typed_refusal_is_not_a_finding():
    def refuse():
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "x")

    outcome = run_case(refuse, (Blocked,))
    assert outcome.kind == "refused" and not outcome.is_finding


def test_any_other_exception_is_a_crash_with_its_location():
    outcome = run_case(lambda: {}["missing"], (Blocked,))
    assert outcome.kind == "crash" and outcome.is_finding
    assert outcome.signature().startswith("crash:KeyError@test_harness.py:")


def test_a_hang_is_cut_at_the_deadline_and_the_outer_alarm_is_restored():
    previous = signal.getsignal(signal.SIGALRM)

    def spin():
        while True:
            pass

    outcome = run_case(spin, (), seconds=0.2)
    assert outcome.kind == "timeout" and 0.15 < outcome.seconds < 2
    assert signal.getsignal(signal.SIGALRM) is previous


def test_an_allocation_beyond_the_bound_is_a_memory_finding():
    outcome = run_case(lambda: bytearray(8 * 1024 * 1024), (), max_peak_bytes=1024 * 1024)
    assert outcome.kind == "memory" and outcome.peak_bytes >= 8 * 1024 * 1024


def test_an_escaping_warning_is_a_finding_only_when_forbidden():
    import warnings

    def warn():
        warnings.warn("value quoted here", UserWarning)

    assert run_case(warn, ()).kind == "ok"
    outcome = run_case(warn, (), forbid_warnings=True)
    assert outcome.kind == "warning" and outcome.signature().startswith("warning:UserWarning@test_harness.py")
