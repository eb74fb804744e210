"""The shipped squid.conf examples: accepted by this machine's Squid, and fail-closed.

``squid -k parse`` is the check an operator runs before a reload, so every
example must pass it on Debian 12's squid-openssl 5.7 without warnings. Files
an example names (the ssl_bump CA) are generated here, because Squid refuses
the config while they are missing. The structural tests pin down the choices
that keep the deployment fail-closed and private; they read the files the
users copy, not a copy of them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.squid import EXAMPLES, SQUID, make_ca, make_shared_dir

pytestmark = pytest.mark.skipif(not Path(SQUID).exists(), reason="squid-openssl is not installed")

CONFS = sorted(p.name for p in EXAMPLES.glob("*.conf"))
#: lines Squid prints while parsing that report a problem (the "Processing:" echo excluded)
PROBLEM = re.compile(r"WARNING|ERROR|FATAL|unrecognized|Bungled", re.IGNORECASE)


def parse(conf: Path) -> tuple[int, list[str]]:
    result = subprocess.run([SQUID, "-k", "parse", "-f", str(conf)], capture_output=True, text=True,
                            timeout=60, cwd=conf.parent)
    output = (result.stdout + result.stderr).splitlines()
    problems = [line for line in output if PROBLEM.search(line) and "| Processing:" not in line]
    return result.returncode, problems


def directives(name: str) -> list[list[str]]:
    out = []
    for line in (EXAMPLES / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split())
    return out


@pytest.fixture(scope="module")
def bump_ca_dir():
    directory = make_shared_dir("icapdlp-parse-")
    make_ca(directory, "bump-ca", "icapdlp test interception CA")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_all_five_examples_are_present():
    assert CONFS == ["icaps.conf", "many-instances.conf", "ssl-bump.conf", "upload-download.conf"]
    assert (EXAMPLES / "README.md").exists()


@pytest.mark.parametrize("name", [n for n in CONFS if n != "ssl-bump.conf"])
def test_example_parses_cleanly(name):
    rc, problems = parse(EXAMPLES / name)
    assert rc == 0 and problems == []


def test_ssl_bump_example_parses_with_its_ca_files(bump_ca_dir):
    conf = bump_ca_dir / "ssl-bump.conf"
    text = (EXAMPLES / "ssl-bump.conf").read_text()
    assert "tls-cert=/etc/squid/ssl/bump-ca.crt tls-key=/etc/squid/ssl/bump-ca.key" in text
    conf.write_text(text.replace("/etc/squid/ssl/", f"{bump_ca_dir}/"))
    rc, problems = parse(conf)
    # sslproxy_cert_error is a directive whose name matches the pattern; it is not a problem
    assert rc == 0 and [p for p in problems if "sslproxy_cert_error" not in p] == []


def test_ssl_bump_example_without_its_ca_is_refused(tmp_path):
    """The README says Squid refuses the file until the CA exists; hold it to that."""
    conf = tmp_path / "ssl-bump.conf"
    text = (EXAMPLES / "ssl-bump.conf").read_text()
    conf.write_text(text.replace("/etc/squid/ssl/", f"{tmp_path}/missing/"))
    rc, problems = parse(conf)
    assert rc != 0
    assert any("FATAL" in p for p in problems)


def test_parse_check_detects_a_broken_file(tmp_path):
    """Guards the checker itself: a typo in a directive must make it fail."""
    conf = tmp_path / "broken.conf"
    conf.write_text((EXAMPLES / "upload-download.conf").read_text() + "\nicap_servise typo on\n")
    rc, problems = parse(conf)
    assert rc != 0 and any("icap_servise" in p for p in problems)


@pytest.mark.parametrize("name", CONFS)
def test_every_icap_service_is_essential(name):
    services = [d for d in directives(name) if d[0] == "icap_service"]
    assert services, "each example defines its ICAP services"
    for service in services:
        options = dict(opt.split("=", 1) for opt in service[4:] if "=" in opt)
        assert options.get("bypass") == "off", f"{service[1]} must be bypass=off (fail closed)"


@pytest.mark.parametrize("name", CONFS)
def test_only_candidate_traffic_goes_to_icap(name):
    lines = directives(name)
    acls = {d[1]: d[2] for d in lines if d[0] == "acl"}
    access = [d for d in lines if d[0] == "adaptation_access"]
    targets = {d[1] for d in access}
    assert targets == {"deid_req", "deid_resp"}
    for target in targets:
        rules = [d[2:] for d in access if d[1] == target]
        assert rules[-1] == ["deny", "all"], f"{target}: everything not listed stays away from ICAP"
        for verdict, *acl_names in rules:
            if verdict == "allow":
                types = {acls[a] for a in acl_names if a in acls}
                assert types & {"req_mime_type", "rep_mime_type", "req_header"}, f"{target}: {acl_names}"
    upload = next(d for d in lines if d[0] == "acl" and d[1] == "upload_methods")
    assert upload[2:] == ["method", "POST", "PUT", "PATCH"]


@pytest.mark.parametrize("name", CONFS)
def test_privacy_settings(name):
    lines = directives(name)
    first = {d[0]: d[1:] for d in reversed(lines)}
    assert first["adaptation_send_client_ip"] == ["off"]
    assert first["adaptation_send_username"] == ["off"]
    assert first["icap_preview_enable"] == ["on"]
    assert first["icap_persistent_connections"] == ["on"]
    assert ["cache", "deny", "all"] in lines, "medical objects are never cached on the proxy"
    logformats = {d[1]: " ".join(d[2:]) for d in lines if d[0] == "logformat"}
    access_logs = [d for d in lines if d[0] == "access_log"]
    assert access_logs and all(d[2] in logformats for d in access_logs)
    for d in access_logs:  # no URL path: DICOMweb paths carry study and instance UIDs
        assert not re.search(r"%[<>]?(ru|rp|>ru|<ru|rp)\b", logformats[d[2]])
    icap_logs = [d for d in lines if d[0] == "icap_log"]
    assert icap_logs and "%icap::to/%03icap::Hs" in logformats[icap_logs[0][2]]


def test_icaps_example_verifies_the_icap_server():
    services = [d for d in directives("icaps.conf") if d[0] == "icap_service"]
    for service in services:
        assert service[3].startswith("icaps://")
        options = dict(opt.split("=", 1) for opt in service[4:] if "=" in opt)
        assert options["tls-default-ca"] == "off" and options["tls-cafile"]
        assert options["tls-domain"] in service[3]
        assert options["tls-cert"] and options["tls-key"] and options["tls-min-version"] == "1.2"
        assert "DONT_VERIFY" not in " ".join(service)


def test_many_instances_example_fails_over_between_essential_services():
    lines = directives("many-instances.conf")
    sets = {d[1]: d[2:] for d in lines if d[0] == "adaptation_service_set"}
    assert sets == {"deid_req": ["deid_req_a", "deid_req_b"], "deid_resp": ["deid_resp_a", "deid_resp_b"]}
    points = {d[1]: d[2] for d in lines if d[0] == "icap_service"}
    assert {points[s] for s in sets["deid_req"]} == {"reqmod_precache"}
    assert {points[s] for s in sets["deid_resp"]} == {"respmod_precache"}


def test_ssl_bump_example_splices_everything_not_listed():
    rules = [d[1:] for d in directives("ssl-bump.conf") if d[0] == "ssl_bump"]
    assert rules == [["peek", "step1"], ["bump", "bump_hosts"], ["splice", "all"]]


@pytest.mark.parametrize("name", CONFS)
def test_request_buffer_is_raised_against_squid_bug_5405(name):
    """Squid 5.7 cuts off large uploads that fill a 512 KB request buffer (see README)."""
    [value] = [d[1:] for d in directives(name) if d[0] == "client_request_buffer_max_size"]
    amount, unit = int(value[0]), value[1]
    assert unit == "MB" and amount >= 8
