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
#: the include files: the shareable part and its opt-in narrowing
SHARED, NARROW = "icapdlp.conf", "icapdlp-narrow.conf"
#: complete squid.conf files (an http_port, http_access rules and the shared part)
COMPLETE = [n for n in CONFS if n not in (SHARED, NARROW)]
#: lines Squid prints while parsing that report a problem (the "Processing:" echo excluded)
PROBLEM = re.compile(r"WARNING|ERROR|FATAL|unrecognized|Bungled", re.IGNORECASE)
#: the one warning the examples cause on purpose: "via off" (see icapdlp.conf for why)
VIA_OFF_WARNING = "WARNING: HTTP requires the use of Via"


def parse(conf: Path) -> tuple[int, list[str]]:
    result = subprocess.run([SQUID, "-k", "parse", "-f", str(conf)], capture_output=True, text=True,
                            timeout=60, cwd=conf.parent)
    output = (result.stdout + result.stderr).splitlines()
    problems = [line for line in output if PROBLEM.search(line) and "| Processing:" not in line
                and VIA_OFF_WARNING not in line]
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


def test_all_examples_are_present():
    assert COMPLETE == ["icaps.conf", "many-instances.conf", "ssl-bump.conf", "upload-download.conf"]
    assert CONFS == sorted(COMPLETE + [SHARED, NARROW])
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


@pytest.mark.parametrize("name", COMPLETE + [SHARED])
def test_every_icap_service_is_essential(name):
    services = [d for d in directives(name) if d[0] == "icap_service"]
    assert services, "each example defines its ICAP services"
    for service in services:
        options = dict(opt.split("=", 1) for opt in service[4:] if "=" in opt)
        assert options.get("bypass") == "off", f"{service[1]} must be bypass=off (fail closed)"


def adaptation_rules(lines: list[list[str]]) -> dict[str, list[list[str]]]:
    """Each adaptation_access target's rules (verdict and ACL names), in order."""
    rules: dict[str, list[list[str]]] = {}
    for d in lines:
        if d[0] == "adaptation_access":
            rules.setdefault(d[1], []).append(d[2:])
    return rules


@pytest.mark.parametrize("name", COMPLETE + [SHARED])
def test_every_body_goes_to_icapdlp(name):
    """Fail closed (issue 12 item 9): neither the declared type nor the method decides.

    Requests: every one with a Transfer-Encoding or a non-zero Content-Length,
    whatever its method and type. Responses: all but CONNECT's. No rule names a
    content type or a method list, which is what let mislabelled DICOM through.
    """
    lines = directives(name)
    acls = {d[1]: d[2:] for d in lines if d[0] == "acl"}
    rules = adaptation_rules(lines)
    assert set(rules) == {"deid_req", "deid_resp"}
    assert rules["deid_resp"] == [["deny", "CONNECT"], ["allow", "all"]]
    *allows, last = rules["deid_req"]
    assert last == ["deny", "all"]
    assert sorted(acls[acl] for verdict, acl in allows) == [
        ["req_header", "Content-Length", "[1-9]"], ["req_header", "Transfer-Encoding", "."]]
    assert not any(d[0] == "acl" and d[2] in ("req_mime_type", "rep_mime_type", "method") and d[1] != "CONNECT"
                   for d in lines), "no type or method list decides what is inspected"


def test_body_acl_patterns_tell_bodies_from_none():
    """The Content-Length pattern: any non-zero length matches, zero (however written) does not."""
    [pattern] = [d[4] for d in directives(SHARED) if d[:4] == ["acl", "icapdlp_sized_body", "req_header",
                                                                 "Content-Length"]]
    for value in ("1", "10", "1048576", "007"):
        assert re.search(pattern, value), value
    for value in ("0", "00", ""):
        assert not re.search(pattern, value), value


def test_upload_download_example_carries_the_shared_part_word_for_word():
    assert (EXAMPLES / SHARED).read_text() in (EXAMPLES / "upload-download.conf").read_text()


SERVICE_DIRECTIVES = ("icap_service", "adaptation_service_set")


@pytest.mark.parametrize("name", COMPLETE)
def test_complete_examples_hold_the_shared_directives_in_order(name):
    """Each complete example = its listener + icapdlp.conf's directives (own services) + housekeeping."""
    shared = [d for d in directives(SHARED) if d[0] not in SERVICE_DIRECTIVES]
    mine = [d for d in directives(name) if d[0] not in SERVICE_DIRECTIVES]
    start = mine.index(shared[0])
    assert mine[start:start + len(shared)] == shared


def test_shared_part_declares_no_listener_and_no_access_rule():
    """So it can be added to any squid.conf (Debian's default included) without a clash."""
    names = {d[0] for d in directives(SHARED)}
    assert not names & {"http_port", "https_port", "http_access", "include", "coredump_dir", "cache_dir"}
    assert all(d[1].startswith("icapdlp_") for d in directives(SHARED) if d[0] == "acl")


def test_narrow_opt_in_only_adds_exemptions():
    """It may only deny (keep away from icapdlp) and never for an encoded message."""
    lines = directives(NARROW)
    assert {d[0] for d in lines} == {"acl", "adaptation_access"}
    rules = adaptation_rules(lines)
    assert rules == {"deid_req": [["deny", "!icapdlp_carrier_req", "!icapdlp_encoded_req"]],
                     "deid_resp": [["deny", "!icapdlp_carrier_rep", "!icapdlp_encoded_rep"]]}
    acls = {d[1]: d[2:4] for d in lines if d[0] == "acl"}
    assert acls["icapdlp_encoded_req"] == ["req_header", "Content-Encoding"]
    assert acls["icapdlp_encoded_rep"] == ["rep_header", "Content-Encoding"]
    text = (EXAMPLES / NARROW).read_text()
    assert "NOT INSPECTED" in text and "BEFORE icapdlp.conf" in text
    assert NARROW < SHARED, "in conf.d the narrow file sorts first, as its deny rules must come first"


def test_narrow_opt_in_parses_before_the_shared_part(tmp_path):
    conf = tmp_path / "squid.conf"
    conf.write_text(f"http_port 127.0.0.1:3128\ninclude {EXAMPLES / NARROW}\ninclude {EXAMPLES / SHARED}\n"
                    "http_access allow localhost\nhttp_access deny all\n")
    rc, problems = parse(conf)
    assert rc == 0 and problems == []


@pytest.mark.parametrize("name", COMPLETE + [SHARED])
def test_privacy_settings(name):
    lines = directives(name)
    first = {d[0]: d[1:] for d in reversed(lines)}
    # the origin learns neither the client's address nor the proxy's name (issue 16 item 9)
    assert first["forwarded_for"] == ["delete"] and first["via"] == ["off"]
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
    assert rules == [["peek", "step1"], ["bump", "bump_hosts"], ["bump", "bump_dst"], ["splice", "all"]]
    acls = {d[1]: d[2:] for d in directives("ssl-bump.conf") if d[0] == "acl"}
    assert acls["bump_hosts"][1:] == acls["bump_dst"][1:]  # the same hosts, by SNI and by CONNECT target


@pytest.mark.parametrize("name", COMPLETE + [SHARED])
def test_request_buffer_is_raised_against_squid_bug_5405(name):
    """Squid 5.7 cuts off large uploads that fill a 512 KB request buffer (see README)."""
    [value] = [d[1:] for d in directives(name) if d[0] == "client_request_buffer_max_size"]
    amount, unit = int(value[0]), value[1]
    assert unit == "MB" and amount >= 8
