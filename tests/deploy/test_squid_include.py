"""``icapdlp.conf`` added to Debian's own default squid.conf works as the README says.

Issue 16 item 9: the README said the example could be included into an
existing configuration, but it declared its own ``http_port`` and
``http_access`` and clashed with Debian's default. The test builds a copy of
the configuration the installed package ships (``/etc/squid/squid.conf`` and
``/etc/squid/conf.d/*.conf``, checked against dpkg's record so a locally edited
file is not mistaken for the default; never committed), drops
``squid-examples/icapdlp.conf`` into its ``conf.d`` exactly as the README says,
and changes only what a test must: the port, the conf.d path, log and PID
paths. Then a real Squid must parse and run it, send uploads through a real
icapdlp, and tell the origin nothing about the client: no ``X-Forwarded-For``
and no ``Via``. A control run of the untouched default shows that Squid does
add both headers, so the assertion can fail.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.client import via_proxy
from tests.support import synthetic
from tests.support.squid import (
    EXAMPLES,
    SQUID,
    SquidProxy,
    example_log_substitutions,
    free_port,
    harness_overrides,
    icap_outcomes,
    make_shared_dir,
)

DEBIAN_CONF = Path("/etc/squid/squid.conf")
DEBIAN_CONF_D = Path("/etc/squid/conf.d")
DEBIAN_INCLUDE = "include /etc/squid/conf.d/*.conf"
#: headers that tell the destination who sent a request, and through what
IDENTIFYING_HEADERS = ("x-forwarded-for", "via")

pytestmark = [pytest.mark.slow, pytest.mark.e2e,
              pytest.mark.skipif(not Path(SQUID).exists() or not DEBIAN_CONF.exists(),
                                 reason="squid-openssl is not installed")]


def conffile_digests() -> dict[str, str]:
    """dpkg's md5 of each configuration file the Squid packages shipped."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}\\n", "squid-common", "squid-openssl"],
                            capture_output=True, text=True, timeout=30)
    digests = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            digests[fields[0]] = fields[1]
    return digests


def debian_default_files() -> list[Path]:
    """squid.conf and conf.d/*.conf as the package installed them (skip if edited locally)."""
    files = [DEBIAN_CONF, *sorted(DEBIAN_CONF_D.glob("*.conf"))]
    digests = conffile_digests()
    for path in files:
        if digests.get(str(path)) != hashlib.md5(path.read_bytes()).hexdigest():
            pytest.skip(f"{path} is not the packaged default on this machine")
    return files


def debian_squid(workdir: Path, *, with_icapdlp: bool, icap_port: int | None = None) -> SquidProxy:
    """Debian's default configuration in ``workdir``, with icapdlp.conf in its conf.d if asked."""
    debian_default_files()
    conf_d = workdir / "conf.d"
    conf_d.mkdir()
    for path in DEBIAN_CONF_D.glob("*.conf"):
        shutil.copy(path, conf_d / path.name)
    port = free_port()
    text = DEBIAN_CONF.read_text()
    assert text.count(DEBIAN_INCLUDE) == 1 and text.count("\nhttp_port 3128\n") == 1
    text = text.replace(DEBIAN_INCLUDE, f"include {conf_d}/*.conf")
    text = text.replace("\nhttp_port 3128\n", f"\nhttp_port 127.0.0.1:{port}\n")
    text += "\n".join(harness_overrides(workdir)) + "\n"
    if with_icapdlp:
        # the README's step: cp icapdlp.conf /etc/squid/conf.d/icapdlp.conf (test paths only)
        shared = (EXAMPLES / "icapdlp.conf").read_text()
        for old, new in example_log_substitutions(workdir)[:2] + [
                ("icap://127.0.0.1:1344/", f"icap://127.0.0.1:{icap_port}/")]:
            assert old in shared
            shared = shared.replace(old, new)
        (conf_d / "icapdlp.conf").write_text(shared)
    for path in conf_d.iterdir():
        path.chmod(0o644)
    return SquidProxy(text, workdir, port)


def parse(conf: Path) -> tuple[int, str]:
    result = subprocess.run([SQUID, "-k", "parse", "-f", str(conf)], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def included_squid(icapdlp):
    workdir = make_shared_dir("icapdlp-debian-")
    proxy = debian_squid(workdir, with_icapdlp=True, icap_port=icapdlp.port)
    try:
        yield proxy.start()
    finally:
        proxy.cleanup()


def test_debian_default_with_icapdlp_conf_parses_cleanly():
    workdir = make_shared_dir("icapdlp-debian-parse-")
    try:
        proxy = debian_squid(workdir, with_icapdlp=True, icap_port=1344)
        proxy.config_path.write_text(proxy.config_text)
        rc, output = parse(proxy.config_path)
        problems = [line for line in output.splitlines()
                    if any(w in line for w in ("WARNING", "ERROR", "FATAL")) and "requires the use of Via" not in line]
        assert rc == 0 and problems == [], output[-3000:]
        assert f"{workdir}/conf.d/icapdlp.conf" in output, "the include was really read"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_upload_through_debian_default_plus_include_is_deidentified_and_anonymous(included_squid, origin):
    original = synthetic.make_ct(380)
    origin.clear()
    start = len(included_squid.icap_log())
    reply = via_proxy(included_squid.port, "POST", origin.url("/raw/included.dcm"), original.data,
                      {"Content-Type": "text/plain"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert original.surviving(got.body) == [] and got.body.startswith(b"\0" * 128 + b"DICM")
    for header in IDENTIFYING_HEADERS:
        assert header not in got.headers, f"the origin was told {header}"
        assert header not in reply.headers, f"the client was told {header}"
    outcomes = icap_outcomes(included_squid.wait_icap_log(start + 2)[start:])
    assert ("REQMOD", "ICAP_MOD", 200) in outcomes


def test_control_debian_default_alone_tells_the_origin_both(origin):
    """Without icapdlp.conf, Squid adds X-Forwarded-For and Via: the check above can fail."""
    workdir = make_shared_dir("icapdlp-debian-plain-")
    proxy = debian_squid(workdir, with_icapdlp=False)
    try:
        proxy.start()
        origin.clear()
        reply = via_proxy(proxy.port, "PUT", origin.url("/raw/control"), b"plain text\n", {"Content-Type": "text/plain"})
        assert reply.status == 200
        [got] = origin.wait_received(1)
        assert all(header in got.headers for header in IDENTIFYING_HEADERS)
    finally:
        proxy.cleanup()
