"""squid-examples/many-instances.conf: one Squid, two icapdlp, failover in a service set.

Both members are essential (bypass=off). With the first member stopped, Squid
must move the upload to the second one (the body is still intact when the
connection is refused) and the object must still arrive de-identified; with
both stopped, the upload is refused and nothing reaches the origin.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.client import via_proxy
from tests.e2e.conftest import E2E_POLICY
from tests.support import synthetic
from tests.support.processes import start_icapdlp
from tests.support.squid import start_squid_from_example

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def pair(e2e_dir):
    first = start_icapdlp(E2E_POLICY, e2e_dir / "member-a")
    second = start_icapdlp(E2E_POLICY, e2e_dir / "member-b", key_path=first.key_path)
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def set_squid(pair):
    first, second = pair
    proxy = start_squid_from_example("many-instances.conf", substitutions=[
        ("icap://10.0.0.11:1344/", f"icap://127.0.0.1:{first.port}/"),
        ("icap://10.0.0.12:1344/", f"icap://127.0.0.1:{second.port}/"),
    ])
    yield proxy
    proxy.cleanup()


def served_by(proxy, start: int, timeout: float = 10.0) -> list[tuple[str, str]]:
    """(ICAP URI, outcome/status) of REQMOD lines logged since line ``start``, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        fields = [line.split() for line in proxy.icap_log()[start:]]
        found = [(f[5], f[2]) for f in fields if len(f) > 5 and f[4] == "REQMOD"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_service_set_fails_over_to_the_second_member(set_squid, pair, origin):
    first, second = pair
    original = synthetic.make_ct(61)
    origin.clear()
    start = len(set_squid.icap_log())
    assert via_proxy(set_squid.port, "POST", origin.url("/raw/a"), original.data,
                     {"Content-Type": "application/dicom"}).status == 200
    assert [uri for uri, _ in served_by(set_squid, start)] == [f"icap://127.0.0.1:{first.port}/deid-req"]

    first.stop()
    origin.clear()
    start = len(set_squid.icap_log())
    reply = via_proxy(set_squid.port, "POST", origin.url("/raw/b"), original.data,
                      {"Content-Type": "application/dicom"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert original.surviving(got.body) == [] and got.body[128:132] == b"DICM"
    served = served_by(set_squid, start)
    assert (f"icap://127.0.0.1:{second.port}/deid-req", "ICAP_MOD/200") in served

    second.stop()
    origin.clear()
    reply = via_proxy(set_squid.port, "POST", origin.url("/raw/c"), original.data,
                      {"Content-Type": "application/dicom"})
    assert reply.status == 500
    assert origin.wait_received(1, timeout=1.0) == []
