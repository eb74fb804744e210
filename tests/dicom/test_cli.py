"""The offline CLI: mirrored folders, exit status on blocks, inspect prints no values."""

from __future__ import annotations

import io

import pydicom

from icapdlp.cli.main import main
from icapdlp.config.keys import generate_key_file
from tests.support.synthetic import make_ct, make_study


def _setup(tmp_path):
    src = tmp_path / "in"
    (src / "series2").mkdir(parents=True)
    study = make_study(2, 2, seed=31)
    for index, obj in enumerate(study):
        folder = src / "series2" if index >= 2 else src
        (folder / f"img{index}.dcm").write_bytes(obj.data)
    key = tmp_path / "key"
    generate_key_file(str(key))
    policy = tmp_path / "policy.toml"
    policy.write_text("[profile]\nclean_pixel_data = false\n")
    return src, key, policy, study


def test_anonymize_mirrors_folders_and_leaves_no_phi(tmp_path, capsys):
    src, key, policy, study = _setup(tmp_path)
    out = tmp_path / "out"
    code = main(["anonymize", str(src), "-o", str(out), "--key-file", str(key), "--policy", str(policy),
                 "--jobs", "2"])
    assert code == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert written == ["img0.dcm", "img1.dcm", "series2/img2.dcm", "series2/img3.dcm"]
    for path, obj in zip(sorted(out.rglob("*.dcm")), study):
        assert obj.surviving(path.read_bytes()) == []
    studies = {pydicom.dcmread(p).StudyInstanceUID for p in out.rglob("*.dcm")}
    assert len(studies) == 1
    assert "4 written, 0 blocked" in capsys.readouterr().out


def test_anonymize_exits_non_zero_when_something_is_blocked(tmp_path, capsys):
    src, key, policy, _ = _setup(tmp_path)
    (src / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"x" * 64)
    code = main(["anonymize", str(src), "-o", str(tmp_path / "out"), "--key-file", str(key),
                 "--config", str(policy), "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "BLOCKED unparseable-dicom" in captured.err and "1 blocked" in captured.out
    assert not (tmp_path / "out" / "broken.dcm").exists()


def test_inspect_shows_actions_without_values(tmp_path, capsys):
    _, key, policy, _ = _setup(tmp_path)
    obj = make_ct(32)
    path = tmp_path / "one.dcm"
    path.write_bytes(obj.data)
    assert main(["inspect", str(path), "--key-file", str(key), "--policy", str(policy)]) == 0
    text = capsys.readouterr().out
    assert "PatientName" in text and "rule=Z" in text and "removed" in text
    assert "ReferencedSOPInstanceUID" in text and "replaced" in text
    assert not any(p in text for p in obj.planted)
    assert not (tmp_path / "out").exists()


def test_anonymize_writes_what_the_pipeline_makes_and_leaves_the_input_alone(tmp_path):
    """The CLI gives its own buffer away (high bits zeroed in place): same bytes, input untouched."""
    import argparse

    from icapdlp.cli.anonymize import build_config, read_owned
    from icapdlp.dicom.pipeline import deidentify_bytes
    from tests.support.synthetic import make_large_sequences, make_multiframe

    _, key, policy, _ = _setup(tmp_path)
    src = tmp_path / "planted"
    src.mkdir()
    objects = {"frames.dcm": make_multiframe(33, frames=3, rows=16, columns=16),  # bits above High Bit
               "refs.dcm": make_large_sequences(34, items=50)}
    for name, obj in objects.items():
        (src / name).write_bytes(obj.data)
    out = tmp_path / "out"
    assert main(["anonymize", str(src), "-o", str(out), "--key-file", str(key), "--policy", str(policy),
                 "--jobs", "1"]) == 0
    cfg, _, _ = build_config(argparse.Namespace(config=str(policy), review=None, key_file=str(key)))
    for name, obj in objects.items():
        assert (src / name).read_bytes() == obj.data  # the input file is never written
        assert read_owned(src / name) == bytearray(obj.data)
        written = (out / name).read_bytes()
        assert written == deidentify_bytes(obj.data, cfg).data
        assert obj.surviving(written) == []
    ds = pydicom.dcmread(io.BytesIO((out / "frames.dcm").read_bytes()))
    assert ds.BitsStored < 16 and not (ds.pixel_array >> ds.BitsStored).any()  # planted bits are gone
