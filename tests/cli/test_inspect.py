"""``inspect`` needs no key and says what Clean Pixel Data would do to this object (issue 16.7).

Before, it refused to run without a key although it writes nothing, and it
never ran the pixel cleaner: Pixel Data read "unchanged" even for an image
the server would OCR, redact or block.
"""

from __future__ import annotations

import re

import pytest

from icapdlp.cli.main import main
from tests.cli.helpers import one_line
from tests.support.burned_in import make_case, to_bytes
from tests.support.synthetic import make_ct


@pytest.fixture
def ct_file(tmp_path, monkeypatch):
    for name in ("ICAPDLP_KEY__FILE", "ICAPDLP_KEY__HEX", "ICAPDLP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    obj = make_ct(52)
    path = tmp_path / "ct.dcm"
    path.write_bytes(obj.data)
    return path, obj


def _policy(tmp_path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return str(path)


def _pixel_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("Pixel cleaning: "))


def test_inspect_runs_without_a_key_and_shows_uids_as_replaced(ct_file, tmp_path, capsys):
    path, obj = ct_file
    code = main(["inspect", str(path), "--config", _policy(tmp_path, "[profile]\nclean_pixel_data = false\n")])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^\(0008,0018\) SOPInstanceUID +UI rule=\S+ +replaced$", out, re.M), out
    assert "Key: none configured; a throwaway key was used" in out
    assert _pixel_line(out) == ("Pixel cleaning: off (profile.clean_pixel_data = false): burned-in text is not "
                                "looked for")
    assert not any(p in out for p in obj.planted)


def test_a_configured_key_that_cannot_be_read_is_still_an_error(ct_file, tmp_path, capsys):
    path, _ = ct_file
    assert main(["inspect", str(path), "--key-file", str(tmp_path / "missing.key")]) == 2
    assert "missing.key" in one_line(capsys.readouterr().err, "icapdlp inspect: ")


def test_pixel_cleaning_that_is_not_needed_says_why(ct_file, tmp_path, capsys):
    path, _ = ct_file  # CT is not in the default modalities list
    assert main(["inspect", str(path), "--config", _policy(tmp_path, '[pixels]\nocr_when = "listed"\n')]) == 0
    line = _pixel_line(capsys.readouterr().out)
    assert line.startswith("Pixel cleaning: not needed (") and 'ocr_when = "listed"' in line


def test_pixel_cleaning_that_cannot_work_reports_the_block_the_server_would_give(ct_file, tmp_path, capsys):
    path, _ = ct_file
    code = main(["inspect", str(path), "--config", _policy(tmp_path, '[pixels]\nocr_language = "zz_nolang"\n')])
    out = capsys.readouterr().out
    assert code == 1
    assert _pixel_line(out).startswith("Pixel cleaning: BLOCKED pixel-cleaning-impossible (")
    assert "PatientName" in out  # the attribute table is still shown


@pytest.mark.slow
def test_burned_in_text_is_ocrd_and_redacted_as_the_server_would(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ICAPDLP_CONFIG", raising=False)
    case = make_case(3, font_px=(20, 32))
    path = tmp_path / "us.dcm"
    path.write_bytes(to_bytes(case.dataset))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    line = _pixel_line(out)
    assert re.match(r"Pixel cleaning: OCR'd 1 frame\(s\); [1-9]\d* region\(s\) redacted \(", line), line
    assert re.search(r"^\(7FE0,0010\) PixelData .* changed$", out, re.M)
    assert not any(t.text in out for t in case.truth if t.kind == "phi")
