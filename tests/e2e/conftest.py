"""Shared real processes for the end-to-end tests: origin, icapdlp, Squid.

One icapdlp and one Squid (rendered from squid-examples/upload-download.conf)
serve every test that does not need its own (the failure, ssl_bump, ICAPS
and replica tests start theirs), which keeps this area within its CI budget.
Everything listens on 127.0.0.1 on free ports and is stopped by PID.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.origin import OriginServer
from tests.support.processes import ServerProcess, start_icapdlp
from tests.support.squid import SquidProxy, icap_outcomes, start_squid_from_example

#: one worker process: the CI machine has two cores and other areas run too.
#: OCR only for the modalities listed by default: the synthetic CTs skip it, so
#: the wrapping tests run at full speed, while the ultrasound image of the
#: burned-in text test goes through real Tesseract and NER.
E2E_POLICY = """\
[workers]
processes = 1

[pixels]
ocr_when = "listed"
"""


@pytest.fixture(scope="session")
def e2e_dir():
    path = Path(tempfile.mkdtemp(prefix="icapdlp-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def origin():
    server = OriginServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def icapdlp(e2e_dir) -> ServerProcess:
    server = start_icapdlp(E2E_POLICY, e2e_dir / "icapdlp")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def squid(icapdlp) -> SquidProxy:
    proxy = start_squid_from_example("upload-download.conf", icap_port=icapdlp.port)
    yield proxy
    proxy.cleanup()


class IcapLogWatch:
    """The icap.log lines a single test caused (Squid appends one per ICAP transaction)."""

    def __init__(self, proxy: SquidProxy) -> None:
        self.proxy = proxy
        self.start = len(proxy.icap_log())

    def outcomes(self, expected: int, service: str | None = None,
                 timeout: float = 10.0) -> list[tuple[str, str, int]]:
        """(method, outcome, status) of the new non-OPTIONS lines, once ``expected`` of them arrived."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.proxy.icap_log()[self.start:]
            found = [o for o in icap_outcomes(lines, service) if o[0] != "OPTIONS"]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture
def icap_watch(squid):
    return IcapLogWatch(squid)
