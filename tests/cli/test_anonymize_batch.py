"""Issue 16.7: a folder run skips what is not DICOM, shows progress a person or a log can read, can be dry.

Before: JPEG and text files counted as "BLOCKED unparseable-dicom" and the
run exited 1; the progress line had no rate or ETA; there was no --dry-run.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from icapdlp.cli.main import main
from tests.cli.helpers import dicom_folder, key_and_policy, run_cli, snapshot

#: a JPEG's first bytes (SOI, APP0 "JFIF") and a text file: what sits beside DICOM in real folders
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 4
TEXT = b"Study notes: see the PACS for the report.\n"
#: a Part-10 header whose first element's length runs past the end: DICOM by the sniffer, unparseable
BROKEN_DICOM = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"x" * 64


def _mixed_folder(tmp_path):
    src, objects = dicom_folder(tmp_path)
    (src / "photo.jpg").write_bytes(JPEG)
    (src / "sub").mkdir()
    (src / "sub" / "notes.txt").write_bytes(TEXT)
    (src / "empty").write_bytes(b"")
    return src, objects


def test_non_dicom_files_are_skipped_and_counted_and_the_run_succeeds(tmp_path, capsys):
    src, objects = _mixed_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    out = tmp_path / "out"
    code = main(["anonymize", str(src), "-o", str(out), "--key-file", str(key), "--config", str(policy),
                 "--jobs", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 written, 0 blocked, 3 skipped (not DICOM)" in captured.out
    assert "BLOCKED" not in captured.err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["img0.dcm", "img1.dcm"]
    assert all(objects[i].surviving((out / f"img{i}.dcm").read_bytes()) == [] for i in range(2))
    for name in ("photo.jpg", "notes.txt", "empty"):
        assert re.search(rf"skipped, not DICOM: \S*{name}", captured.err), captured.err


def test_a_blocked_dicom_file_still_fails_the_run_beside_skipped_ones(tmp_path, capsys):
    src, _ = _mixed_folder(tmp_path)
    (src / "broken.dcm").write_bytes(BROKEN_DICOM)
    key, policy = key_and_policy(tmp_path)
    code = main(["anonymize", str(src), "-o", str(tmp_path / "out"), "--key-file", str(key),
                 "--config", str(policy), "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "2 written, 1 blocked, 3 skipped (not DICOM)" in captured.out
    assert "BLOCKED unparseable-dicom" in captured.err


def test_plain_progress_is_one_line_per_file_without_control_characters(tmp_path):
    src, _ = _mixed_folder(tmp_path)
    (src / "we\x1b[2Jird\r.txt").write_bytes(TEXT)  # a file name must not drive the terminal either
    key, policy = key_and_policy(tmp_path)
    result = run_cli("anonymize", str(src), "-o", str(tmp_path / "out"), "--key-file", str(key),
                     "--config", str(policy), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.stderr + result.stdout)
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == [f"[{i}/6" for i in range(1, 7)]
    assert sum("written: " in line for line in progress) == 2


@pytest.mark.parametrize("rows, columns", [(30, 120), (0, 0)])  # a sized terminal, and one that gives no size
def test_a_terminal_gets_a_bar_with_rate_and_eta(tmp_path, rows, columns):
    src, _ = dicom_folder(tmp_path, count=4)
    key, policy = key_and_policy(tmp_path)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICAPDLP_")}
    process = subprocess.Popen([sys.executable, "-m", "icapdlp", "anonymize", str(src), "-o", str(tmp_path / "out"),
                                "--key-file", str(key), "--config", str(policy), "--jobs", "1"],
                               stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0
    process.stdout.close()
    text = drawn.decode("utf-8", "replace")
    assert "\r" in text  # one line redrawn in place
    # tqdm's own layout: count, [elapsed<remaining, rate]
    assert re.search(r"4/4 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(file/s|s/file)", text), text
    assert "100%" in text
    assert not re.search(r"^\[\d+/4\]", text, re.M)  # no plain per-file lines on a terminal


def test_dry_run_says_what_would_be_written_and_writes_nothing(tmp_path, capsys):
    src, _ = _mixed_folder(tmp_path)
    (src / "broken.dcm").write_bytes(BROKEN_DICOM)
    key, policy = key_and_policy(tmp_path)
    policy.write_text(policy.read_text() + f'[pixels]\nreview_dir = "{tmp_path / "review"}"\n')
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    code = main(["anonymize", str(src), "-o", str(out), "--dry-run", "--key-file", str(key),
                 "--config", str(policy), "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 1  # what a real run would exit with: one DICOM file would be blocked
    assert snapshot(tmp_path) == before and not out.exists() and not (tmp_path / "review").exists()
    assert f"would write: {out / 'img0.dcm'}" in captured.err
    assert "BLOCKED unparseable-dicom" in captured.err
    assert "2 would be written (dry run, nothing written), 1 blocked, 3 skipped (not DICOM)" in captured.out


def test_dry_run_in_place_touches_nothing(tmp_path, capsys):
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    before = snapshot(src)
    assert main(["anonymize", str(src), "--in-place", "--dry-run", "--key-file", str(key),
                 "--config", str(policy), "--jobs", "1"]) == 0
    assert snapshot(src) == before
