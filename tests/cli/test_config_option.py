"""Issue 16.7: one ``--config FILE`` for every command; check-config fails on a key serve could not load.

The flag was ``--config`` for serve, ``--policy`` for anonymize and inspect
and a positional FILE for check-config. The old spellings still work for one
release, hidden from --help.
"""

from __future__ import annotations

import json

import pytest

from icapdlp.cli.main import build_parser, main
from tests.cli.helpers import KEY_ENV, dicom_folder, key_and_policy, one_line, run_cli


def _help(command: str) -> str:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    return subparsers.choices[command].format_help()


@pytest.mark.parametrize("command", ["serve", "anonymize", "inspect", "check-config"])
def test_every_command_takes_config_and_hides_the_old_spellings(command):
    text = _help(command)
    assert "--config FILE" in text
    assert "--policy" not in text


def test_old_spellings_still_select_the_same_file(tmp_path, capsys):
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    policy.write_text("[profile]\nclean_pixel_data = false\nretain_uids = true\n")
    new = main(["inspect", str(src / "img0.dcm"), "--config", str(policy)])
    new_out = capsys.readouterr().out
    old = main(["inspect", str(src / "img0.dcm"), "--policy", str(policy)])
    assert new == old == 0 and capsys.readouterr().out == new_out
    assert "UIDs replaced: 0" in new_out  # retain_uids came from the file
    port = tmp_path / "port.toml"
    port.write_text("[server]\nport = 1500\n")
    for argv in (["--config", str(port)], [str(port)]):
        result = run_cli("check-config", *argv, env=KEY_ENV)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["settings"]["server"]["port"] == 1500


def test_two_different_config_files_are_refused(tmp_path):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text("")
    two.write_text("")
    result = run_cli("check-config", str(one), "--config", str(two), env=KEY_ENV)
    assert result.returncode == 2
    assert "give one with --config" in one_line(result.stderr, "icapdlp check-config: ")


@pytest.mark.parametrize("env, expected", [
    ({}, "no key configured"),
    ({"ICAPDLP_KEY__FILE": "/nonexistent/icapdlp.key"}, "/nonexistent/icapdlp.key"),
    ({"ICAPDLP_KEY__HEX": "abcd"}, "at least 16 bytes"),
])
def test_check_config_fails_on_a_key_problem_after_printing_the_settings(env, expected):
    """It exited 0 while printing the key problem; serve would then refuse to start."""
    result = run_cli("check-config", env=env)
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["key"]["configured"] is False and expected in report["key"]["problem"]
    assert expected in one_line(result.stderr, "icapdlp check-config: ")


def test_check_config_passes_with_a_key(tmp_path):
    key, _ = key_and_policy(tmp_path)
    result = run_cli("check-config", env={"ICAPDLP_KEY__FILE": str(key)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key"]["configured"] is True


def test_check_config_lists_an_engine_problem_and_a_key_problem_together():
    result = run_cli("check-config", env={"ICAPDLP_PIXELS__TESSERACT_LIBRARY": "libnope.so.5"})
    assert result.returncode == 2 and result.stdout == ""
    line = one_line(result.stderr, "icapdlp check-config: invalid configuration, 2 problems: [1] ")
    assert "pixels.tesseract_library" in line and "[2] key: no key configured" in line
