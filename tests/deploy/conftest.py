"""Fixtures the deploy tests share: a test origin and a real icapdlp, one of each per module."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E_POLICY
from tests.support.origin import OriginServer
from tests.support.processes import start_icapdlp


@pytest.fixture(scope="module")
def origin():
    server = OriginServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def icapdlp(tmp_path_factory):
    server = start_icapdlp(E2E_POLICY, tmp_path_factory.mktemp("icapdlp"))
    yield server
    server.stop()
