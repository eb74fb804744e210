"""Run one fuzz case under a deadline and a memory bound, and classify how it ended.

The invariant every target shares: an input ends in a result or in the
layer's typed refusal (``Blocked`` for payload and DICOM code,
``ProtocolError`` for the ICAP codec). Anything else -- another exception, a
case that runs past its deadline, or one that allocates far more than its
input justifies -- is a finding.

The deadline uses ``SIGALRM`` (``setitimer``) so a pure-Python loop that never
ends is interrupted where it spins. pytest-timeout also uses ``SIGALRM``; the
previous handler and timer are restored after every case so both coexist.
Memory is measured with ``tracemalloc`` (Python allocations, which is where
numpy, pydicom, zlib output buffers and bytes objects live). If tracing is not
on, a case turns it on and off around itself (so other tests in the same
pytest process run untraced); that costs about 0.5 KiB of RSS per case, so
a long campaign starts tracing once for its whole run instead.
"""

from __future__ import annotations

import signal
import time
import traceback
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

#: seconds one case may take in CI; the slowest real case (a small synthetic
#: DICOM through the whole pipeline) takes well under 0.5 s on a 2-core machine
DEFAULT_CASE_SECONDS = 5.0
#: a case may allocate at most this many bytes beyond ALLOWANCE_FACTOR x its input:
#: enough for pydicom's dataset objects around a small object, far below a bomb
BASE_PEAK_BYTES = 64 * 1024 * 1024
ALLOWANCE_FACTOR = 40


class CaseTimeout(BaseException):
    """Raised inside the case by the alarm; a BaseException so ``except Exception`` cannot swallow it."""


@dataclass
class Outcome:
    """How one case ended: ``kind`` is ok, refused, crash, timeout or memory."""

    kind: str
    seconds: float
    peak_bytes: int
    error: BaseException | None = None
    trace: str = ""
    #: categories of warnings that escaped the code under test (they reach stderr and logs,
    #: and pydicom's quote element values, so a product entry point must let none out)
    warnings: tuple[str, ...] = ()

    @property
    def is_finding(self) -> bool:
        return self.kind in ("crash", "timeout", "memory", "warning")

    def signature(self) -> str:
        """A short, PHI-free key to de-duplicate findings: exception type and innermost frames."""
        if self.kind == "warning":
            return f"warning:{','.join(self.warnings)}"
        if self.error is None:
            return self.kind
        frames = traceback.extract_tb(self.error.__traceback__)[-3:]
        where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames))
        return f"{self.kind}:{type(self.error).__name__}@{where}"


def peak_bound(input_size: int) -> int:
    return BASE_PEAK_BYTES + ALLOWANCE_FACTOR * input_size


def run_case(func: Callable[[], object], allowed: tuple[type[BaseException], ...], *,
             seconds: float = DEFAULT_CASE_SECONDS, max_peak_bytes: int = BASE_PEAK_BYTES,
             trace_memory: bool = True, forbid_warnings: bool = False) -> Outcome:
    """Call ``func()``; an exception in ``allowed`` is a typed refusal, anything else a crash."""
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_timer = signal.getitimer(signal.ITIMER_REAL)

    def on_alarm(signum, frame):
        raise CaseTimeout(f"case ran past {seconds} s")

    started_tracing = trace_memory and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    if trace_memory:
        tracemalloc.reset_peak()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.perf_counter()
    kind, error = "ok", None
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            func()
    except CaseTimeout as exc:
        kind, error = "timeout", exc
    except allowed as exc:
        kind, error = "refused", exc
    except BaseException as exc:  # noqa: BLE001 - every other type is what we are looking for
        if isinstance(exc, KeyboardInterrupt):
            raise
        kind, error = "crash", exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
        if started_tracing:
            tracemalloc.stop()
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer[0] > 0:
            # give the outer timer (pytest-timeout) back what was left of it
            signal.setitimer(signal.ITIMER_REAL, max(previous_timer[0] - elapsed, 0.001), previous_timer[1])
    if kind in ("ok", "refused") and peak > max_peak_bytes:
        kind = "memory"
    escaped = tuple(sorted({f"{w.category.__name__}@{w.filename.rsplit('/', 1)[-1]}:{w.lineno}"
                            for w in caught or ()}))
    if kind in ("ok", "refused") and forbid_warnings and escaped:
        kind = "warning"
    trace = "".join(traceback.format_exception(error)) if kind in ("crash", "timeout") and error else ""
    return Outcome(kind, elapsed, peak, error, trace, escaped)


def assert_invariant(outcome: Outcome, what: str) -> None:
    """Fail a test with a summary that names the exception type and where it came from."""
    if outcome.is_finding:
        detail = outcome.trace or f"peak {outcome.peak_bytes} bytes"
        raise AssertionError(f"{what}: {outcome.signature()}\n{detail}")
