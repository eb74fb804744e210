"""Issue 16.6: a user's mistake is one line on stderr naming the path and what to do, exit 2, no traceback.

Each case printed a Python traceback before (``inspect /nope.dcm``,
``inspect DIR``, ``check-config DIR``, ``anonymize ... -o EXISTING_FILE``,
``-o /proc/nope``, a key file that cannot be read). They run through the real
command in a subprocess, as a user would.
"""

from __future__ import annotations

import pytest

from icapdlp.cli.main import main
from tests.cli.helpers import KEY_ENV, dicom_folder, key_and_policy, one_line, run_cli, snapshot


def _cases(tmp_path):
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    existing = tmp_path / "existing.txt"
    existing.write_text("x")
    anonymize = ["anonymize", str(src), "--config", str(policy)]
    shared = tmp_path / "shared.key"
    shared.write_text("ab" * 32)
    shared.chmod(0o644)
    return {
        "inspect-missing": (["inspect", "/nope.dcm"], "/nope.dcm", "check the path"),
        "inspect-folder": (["inspect", str(src)], str(src), "one DICOM file"),
        "inspect-not-dicom": (["inspect", str(policy)], str(policy), "give a DICOM file"),
        "check-config-folder": (["check-config", "--config", str(src)], str(src), "give the TOML"),
        "check-config-folder-old-spelling": (["check-config", str(src)], str(src), "give the TOML"),
        "check-config-missing": (["check-config", "--config", str(tmp_path / "no.toml")], "no.toml", "check the path"),
        "anonymize-output-is-a-file": ([*anonymize, "--key-file", str(key), "-o", str(existing)], str(existing),
                                       "give a folder"),
        "anonymize-output-cannot-be-made": ([*anonymize, "--key-file", str(key), "-o", "/proc/nope"], "/proc/nope",
                                            "choose a folder"),
        "anonymize-missing-input": (["anonymize", str(tmp_path / "nothing"), "-o", str(tmp_path / "out"),
                                     "--key-file", str(key)], "nothing", "check the path"),
        "anonymize-key-missing": ([*anonymize, "-o", str(tmp_path / "out"), "--key-file", str(tmp_path / "nokey")],
                                  "nokey", "genkey"),
        "anonymize-key-is-a-folder": ([*anonymize, "-o", str(tmp_path / "out"), "--key-file", str(src)], str(src),
                                      "give the key file"),
        "anonymize-no-key": ([*anonymize, "-o", str(tmp_path / "out")], "key", "genkey"),
        "anonymize-key-group-readable": ([*anonymize, "-o", str(tmp_path / "out"), "--key-file", str(shared)],
                                         str(shared), "chmod 600"),
        "bad-argument": (["anonymize", str(src), "--jobs", "many"], "--jobs", "--help"),
    }


CASES = ["inspect-missing", "inspect-folder", "inspect-not-dicom", "check-config-folder",
         "check-config-folder-old-spelling", "check-config-missing", "anonymize-output-is-a-file",
         "anonymize-output-cannot-be-made", "anonymize-missing-input", "anonymize-key-missing",
         "anonymize-key-is-a-folder", "anonymize-no-key", "anonymize-key-group-readable", "bad-argument"]


@pytest.mark.parametrize("case", CASES)
def test_a_user_error_is_one_line_with_the_path_and_what_to_do(tmp_path, case):
    argv, path, advice = _cases(tmp_path)[case]
    before = snapshot(tmp_path)
    result = run_cli(*argv)
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = one_line(result.stderr, f"icapdlp {argv[0]}: ")
    assert path in line and advice in line, line
    assert snapshot(tmp_path) == before  # nothing written, nothing created
    assert result.stdout == ""


def test_an_unexpected_failure_is_one_line_without_the_exception_text(tmp_path, capsys, monkeypatch):
    """A bug's exception text may quote a value from the file: only its type is printed, exit 1."""
    src, objects = dicom_folder(tmp_path)
    planted = objects[0].planted[0]

    def broken(*_args, **_kwargs):
        raise ValueError(f"cannot handle {planted}")

    monkeypatch.setattr("icapdlp.cli.inspect.deidentify_bytes", broken)
    assert main(["inspect", str(src / "img0.dcm"), "--config", str(tmp_path / "none.toml")]) == 2  # config first
    capsys.readouterr()
    code = main(["inspect", str(src / "img0.dcm")])
    err = capsys.readouterr().err
    assert code == 1
    line = one_line(err, "icapdlp inspect: internal error (ValueError at test_user_errors.py:")
    assert planted not in line and "in broken" in line


def test_config_problems_from_the_environment_are_one_line_naming_the_variable(tmp_path):
    result = run_cli("check-config", env={**KEY_ENV, "ICAPDLP_SERVR__PORT": "1"})
    assert result.returncode == 2
    line = one_line(result.stderr, "icapdlp check-config: ")
    assert 'ICAPDLP_SERVR__PORT: unknown section "servr" (did you mean "server"?)' in line


def test_anonymize_refuses_an_engine_that_cannot_work_before_writing_anything(tmp_path):
    """The same start-up check as serve: not a run that blocks every image (it used to warn and go on)."""
    src, _ = dicom_folder(tmp_path)
    key, _ = key_and_policy(tmp_path)
    result = run_cli("anonymize", str(src), "-o", str(tmp_path / "out"), "--key-file", str(key),
                     env={"ICAPDLP_PIXELS__TESSERACT_LIBRARY": "libnope.so.5"})
    assert result.returncode == 2
    assert "pixels.tesseract_library: cannot load 'libnope.so.5'" in one_line(result.stderr, "icapdlp anonymize: ")
    assert not (tmp_path / "out").exists()


def test_a_path_with_control_characters_cannot_break_the_one_line(tmp_path, capsys):
    hostile = str(tmp_path / "x\n\x1b[2Jy.dcm")
    assert main(["inspect", hostile]) == 2
    line = one_line(capsys.readouterr().err, "icapdlp inspect: ")
    assert "\x1b" not in line and "\\x1b[2J" in line and "\\n" in line


def test_genkey_never_overwrites_and_says_so_in_one_line(tmp_path, capsys):
    key = tmp_path / "icapdlp.key"
    assert main(["genkey", str(key)]) == 0
    before = key.read_bytes()
    capsys.readouterr()
    assert main(["genkey", str(key)]) == 2
    assert "never overwritten" in one_line(capsys.readouterr().err, f"icapdlp genkey: {key}: exists")
    assert key.read_bytes() == before
    assert main(["genkey", str(tmp_path / "no" / "such" / "folder" / "k")]) == 2
    assert "check the path" in one_line(capsys.readouterr().err, "icapdlp genkey: ")
