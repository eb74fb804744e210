"""The settings loader: defaults, TOML, environment, and every kind of bad input."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from icapdlp.config import Settings, load_settings
from icapdlp.config.loader import as_dict
from icapdlp.errors import ConfigError


def write(tmp_path, text: str) -> str:
    path = tmp_path / "icapdlp.toml"
    path.write_text(text)
    return str(path)


def test_built_in_defaults_match_the_documented_policy():
    settings = load_settings(None, environ={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 1344
    assert settings.server.preview_size == 4096
    assert {name: svc.method for name, svc in settings.services.items()} == {
        "deid-req": "REQMOD",
        "deid-resp": "RESPMOD",
    }
    assert all(svc.mode == "deidentify" for svc in settings.services.values())
    assert settings.profile.clean_pixel_data is True
    assert settings.profile.longitudinal_dates == "remove"


def test_settings_are_frozen():
    settings = load_settings(None, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


def test_toml_values_are_read_and_typed(tmp_path):
    path = write(tmp_path, """
[server]
port = 11344
allowed_clients = ["127.0.0.1", "10.0.0.0/8"]
[limits]
idle_timeout = 5
[profile]
retain_uids = true
longitudinal_dates = "modified"
""")
    settings = load_settings(path, environ={})
    assert settings.server.port == 11344
    assert settings.server.allowed_clients == ("127.0.0.1", "10.0.0.0/8")
    assert settings.limits.idle_timeout == 5.0 and isinstance(settings.limits.idle_timeout, float)
    assert settings.profile.retain_uids is True
    assert settings.profile.longitudinal_dates == "modified"


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, """
[server]
port = 99999
bogus = 1
[profile]
retain_uids = "yes"
[services.x]
method = "GET"
[nonsense]
a = 1
""")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"ICAPDLP_LIMITS__IDLE_TIMEOUT": "abc"})
    problems = caught.value.problems
    assert "server.bogus: unknown key" in problems
    assert "server.port: 99999 is above the maximum 65535" in problems
    assert "profile.retain_uids: expected true or false, got 'yes'" in problems
    assert "services.x.method: 'GET' is not one of 'REQMOD', 'RESPMOD'" in problems
    assert "nonsense: unknown key" in problems
    assert "ICAPDLP_LIMITS__IDLE_TIMEOUT (limits.idle_timeout): expected a number, got 'abc'" in problems


@pytest.mark.parametrize("text, expected", [
    ("[server]\nport = 0.5\n", "server.port: expected an integer"),
    ("[server]\nport = true\n", "server.port: expected an integer"),
    ("[limits]\nmax_connections = 0\n", "limits.max_connections: 0 is below the minimum 1"),
    ("[server]\nallowed_clients = \"127.0.0.1\"\n", "server.allowed_clients: expected a list"),
    ("[tls]\nenabled = true\n", "tls: tls.enabled needs tls.cert_file and tls.key_file"),
    ("[audit]\ndestination = \"file\"\n", "audit: audit.destination = 'file' needs audit.file"),
    ("[key]\nfile = \"/x\"\nhex = \"00\"\n", "key: give key.file or key.hex, not both"),
    ("services = {}\n", "<root>: at least one [services.NAME] table is needed"),
    ("server = 3\n", "server: expected a table"),
])
def test_bad_values_name_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_broken_file_is_an_error_never_the_defaults(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[server\nport=1"), environ={})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(str(tmp_path / "missing.toml"), environ={})


def test_environment_overrides_file_and_is_typed(tmp_path):
    path = write(tmp_path, "[server]\nport = 2000\n")
    settings = load_settings(path, environ={
        "ICAPDLP_SERVER__PORT": "2001",
        "ICAPDLP_PIXELS__MODALITIES": "US, CT",
        "ICAPDLP_PROFILE__RETAIN_DEVICE_IDENTITY": "on",
    })
    assert settings.server.port == 2001
    assert settings.pixels.modalities == ("US", "CT")
    assert settings.profile.retain_device_identity is True


def test_unknown_environment_variables_are_rejected():
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"ICAPDLP_SERVR__PORT": "1", "ICAPDLP_TYPO": "1"})
    assert 'ICAPDLP_SERVR__PORT: unknown section "servr" (did you mean "server"?)' in caught.value.problems
    assert ("ICAPDLP_TYPO: not a setting; settings are ICAPDLP_SECTION__KEY" in caught.value.problems)


@pytest.mark.parametrize("variable, expected", [
    # issue 16.7: the message named the section ("servr: unknown key"), not the variable to fix
    ("ICAPDLP_SERVR__PORT", 'ICAPDLP_SERVR__PORT: unknown section "servr" (did you mean "server"?)'),
    ("ICAPDLP_SERVER__PROT", 'ICAPDLP_SERVER__PROT: unknown key "prot" in [server] (did you mean "port"?)'),
    ("ICAPDLP_SERVER_PORT", "ICAPDLP_SERVER_PORT: not a setting; settings are ICAPDLP_SECTION__KEY "
                            "(did you mean ICAPDLP_SERVER__PORT?)"),
    ("ICAPDLP_SERVICES__X__PROFILE__CLEAN_PIXLE_DATA",
     'ICAPDLP_SERVICES__X__PROFILE__CLEAN_PIXLE_DATA: unknown key "clean_pixle_data" in [services.x.profile] '
     '(did you mean "clean_pixel_data"?)'),
    ("ICAPDLP_SERVER__PORT__X", "ICAPDLP_SERVER__PORT__X: server.port is a value, not a section"),
    ("ICAPDLP_PIXELS__OCR_LANGUAGE__", "ICAPDLP_PIXELS__OCR_LANGUAGE__: pixels.ocr_language is a value"),
    ("ICAPDLP_SERVER__PORT", "ICAPDLP_SERVER__PORT (server.port): expected an integer, got 'x'"),
])
def test_environment_problems_name_the_variable_with_a_suggestion(variable, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={variable: "x"})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(expected), caught.value.problems


def test_environment_can_still_set_a_service_of_any_name():
    settings = load_settings(None, environ={"ICAPDLP_SERVICES__EXTRA__METHOD": "RESPMOD",
                                            "ICAPDLP_SERVICES__EXTRA__PROFILE__CLEAN_PIXEL_DATA": "no"})
    assert settings.services["extra"].method == "RESPMOD"
    assert settings.profile_for("extra").clean_pixel_data is False


def test_unknown_toml_keys_get_the_nearest_spelling(tmp_path):
    path = write(tmp_path, "[server]\nprot = 1\n[profle]\nretain_uids = true\n[pixels]\nzzzz = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    problems = caught.value.problems
    assert 'server.prot: unknown key (did you mean "port"?)' in problems
    assert 'profle: unknown key (did you mean "profile"?)' in problems
    assert "pixels.zzzz: unknown key" in problems  # nothing close: no guess


def test_config_path_may_come_from_the_environment(tmp_path):
    path = write(tmp_path, "[server]\nport = 3000\n")
    assert load_settings(None, environ={"ICAPDLP_CONFIG": path}).server.port == 3000


def test_service_profile_inherits_the_global_profile(tmp_path):
    path = write(tmp_path, """
[profile]
retain_device_identity = true
[services.research]
method = "REQMOD"
[services.research.profile]
retain_uids = true
[services.plain]
method = "RESPMOD"
mode = "report-only"
""")
    settings = load_settings(path, environ={})
    research = settings.profile_for("research")
    assert research.retain_uids is True and research.retain_device_identity is True
    plain = settings.profile_for("plain")
    assert plain is settings.profile and plain.retain_uids is False
    assert settings.services["plain"].mode == "report-only"


def test_behaviour_digest_ignores_addresses_but_not_policy(tmp_path):
    base = load_settings(None, environ={})
    moved = load_settings(None, environ={"ICAPDLP_SERVER__PORT": "1400", "ICAPDLP_SERVER__HOST": "0.0.0.0"})
    changed = load_settings(None, environ={"ICAPDLP_PROFILE__RETAIN_UIDS": "true"})
    assert base.behaviour_digest("k") == moved.behaviour_digest("k")
    assert base.behaviour_digest("k") != changed.behaviour_digest("k")
    assert base.behaviour_digest("k1") != base.behaviour_digest("k2")


def test_secrets_are_redacted_when_printed():
    settings = load_settings(None, environ={"ICAPDLP_KEY__HEX": "ab" * 32})
    shown = as_dict(settings)
    assert shown["key"]["hex"] == "<redacted>"
    assert "ab" * 32 not in repr(shown)
    assert isinstance(settings, Settings)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ICAPDLP_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "icapdlp", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_check_config_lists_problems_and_exits_non_zero(tmp_path):
    path = write(tmp_path, "[server]\nport = -1\nfoo = 2\n")
    result = run_cli("check-config", path)
    assert result.returncode == 2
    assert "server.port: -1 is below the minimum 0" in result.stderr
    assert "server.foo: unknown key" in result.stderr


def test_check_config_prints_effective_settings_without_the_key(tmp_path):
    secret = "cd" * 32
    result = run_cli("check-config", write(tmp_path, "[server]\nport = 1500\n"),
                     env={"ICAPDLP_KEY__HEX": secret})
    assert result.returncode == 0, result.stderr
    assert '"port": 1500' in result.stdout
    assert secret not in result.stdout and secret not in result.stderr
    assert '"fingerprint"' in result.stdout


def test_service_mode_is_an_enum_resolved_once_and_a_bad_one_is_named(tmp_path):
    from icapdlp.config import ServiceOptions
    from icapdlp.dicom.options import ServiceMode

    path = write(tmp_path, '[services.audit]\nmode = "report-only"\n[services.plain]\n')
    services = load_settings(path, environ={"ICAPDLP_SERVICES__PLAIN__MODE": "block"}).services
    assert services["audit"].mode is ServiceMode.REPORT_ONLY and services["plain"].mode is ServiceMode.BLOCK
    assert ServiceOptions(mode="deidentify").mode is ServiceMode.DEIDENTIFY  # given in code: resolved too
    bad = write(tmp_path, '[services.audit]\nmode = "audit"\n[services.other]\nmode = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(bad, environ={})
    assert caught.value.problems == [
        "services.audit.mode: 'audit' is not one of 'deidentify', 'block', 'report-only'",
        "services.other.mode: 3 is not one of 'deidentify', 'block', 'report-only'"]
