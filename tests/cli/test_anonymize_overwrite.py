"""Issue 16.1: ``anonymize`` never writes over, into or around its input unless --in-place says so.

``icapdlp anonymize data/in/ct.dcm -o data/in`` exited 0 and replaced the
original with its de-identified copy. Every spelling of "the output overlaps
the input" (same folder, inside, around, relative, through a symlink, a
destination that is an input under another name) is refused with one line,
exit 2, and leaves every file as it was.
"""

from __future__ import annotations

import os

import pytest

from icapdlp.cli.main import main
from tests.cli.helpers import dicom_folder, key_and_policy, one_line, run_cli, snapshot


def test_a_file_anonymized_into_its_own_folder_is_refused_and_left_alone(tmp_path):
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    before = snapshot(src)
    result = run_cli("anonymize", str(src / "img0.dcm"), "-o", str(src), "--key-file", str(key),
                     "--config", str(policy))
    assert result.returncode == 2
    line = one_line(result.stderr, "icapdlp anonymize: ")
    assert str(src) in line and "--in-place" in line
    assert snapshot(src) == before  # the original is not overwritten, nothing is added


@pytest.mark.parametrize("inputs, output", [
    (["in"], "in"),                        # output is the input folder
    (["in"], "in/../in/"),                 # ... spelled differently
    (["in"], "in/sub"),                    # output inside the input
    (["in/img0.dcm"], "."),                # input inside the output
    (["in"], "."),                         # input folder inside the output
    (["in"], "link-to-in"),                # output is the input through a symlink
    (["link-to-in"], "in"),                # input is the output through a symlink
])
def test_every_spelling_of_an_overlap_is_refused(tmp_path, capsys, monkeypatch, inputs, output):
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    (tmp_path / "link-to-in").symlink_to(src)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code = main(["anonymize", *inputs, "-o", output, "--key-file", str(key), "--config", str(policy)])
    assert code == 2
    line = one_line(capsys.readouterr().err, "icapdlp anonymize: ")
    assert "--in-place" in line and "overwritten" in line
    assert snapshot(tmp_path) == before


def test_a_destination_that_is_an_input_under_another_name_is_refused(tmp_path, capsys):
    """out/img0.dcm is a symlink (or a hard link) to in/img0.dcm: the folders do not overlap, the files do."""
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.dcm").symlink_to(src / "img0.dcm")
    os.link(src / "img1.dcm", out / "img1.dcm")
    before = snapshot(src)
    code = main(["anonymize", str(src), "-o", str(out), "--key-file", str(key), "--config", str(policy)])
    assert code == 2
    assert "is the input" in one_line(capsys.readouterr().err, "icapdlp anonymize: ")
    assert snapshot(src) == before


def test_a_symlinked_folder_below_the_output_that_leads_into_the_input_is_refused(tmp_path, capsys):
    src, objects = dicom_folder(tmp_path)
    (src / "series").mkdir()
    (src / "series" / "img9.dcm").write_bytes(objects[0].data)
    key, policy = key_and_policy(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "series").symlink_to(src)  # out/series/img9.dcm would land in in/img9.dcm: a new file in the input
    before = snapshot(src)
    code = main(["anonymize", str(src), "-o", str(out), "--key-file", str(key), "--config", str(policy)])
    assert code == 2
    assert "leads into the input folder" in one_line(capsys.readouterr().err, "icapdlp anonymize: ")
    assert snapshot(src) == before


def test_two_inputs_that_would_land_on_one_file_are_refused(tmp_path, capsys):
    src, objects = dicom_folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "img0.dcm").write_bytes(objects[1].data)
    key, policy = key_and_policy(tmp_path)
    code = main(["anonymize", str(src / "img0.dcm"), str(other / "img0.dcm"), "-o", str(tmp_path / "out"),
                 "--key-file", str(key), "--config", str(policy)])
    assert code == 2
    assert "would both be written" in one_line(capsys.readouterr().err, "icapdlp anonymize: ")
    assert not (tmp_path / "out").exists()


def test_in_place_replaces_each_input_with_its_de_identified_copy(tmp_path, capsys):
    src, objects = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    code = main(["anonymize", str(src), "--in-place", "--key-file", str(key), "--config", str(policy),
                 "--jobs", "1"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in src.iterdir()) == ["img0.dcm", "img1.dcm"]  # no temporary file left
    for index, obj in enumerate(objects):
        data = (src / f"img{index}.dcm").read_bytes()
        assert data != obj.data and obj.surviving(data) == []


def test_in_place_allows_an_output_equal_to_the_input(tmp_path, capsys):
    src, objects = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    assert main(["anonymize", str(src), "-o", str(src), "--in-place", "--key-file", str(key),
                 "--config", str(policy), "--jobs", "1"]) == 0
    assert all(objects[i].surviving((src / f"img{i}.dcm").read_bytes()) == [] for i in range(2))


def test_without_output_or_in_place_nothing_is_guessed(tmp_path, capsys):
    src, _ = dicom_folder(tmp_path)
    key, policy = key_and_policy(tmp_path)
    before = snapshot(src)
    assert main(["anonymize", str(src), "--key-file", str(key), "--config", str(policy)]) == 2
    assert "-o OUT" in one_line(capsys.readouterr().err, "icapdlp anonymize: ")
    assert snapshot(src) == before
