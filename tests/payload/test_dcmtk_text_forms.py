"""DCMTK's own text forms of a DICOM object (red-team F21).

``dcm2xml`` and ``dcmdump`` write an object as XML or as text lines that
``xml2dcm`` and ``dump2dcm`` turn back into the file, patient's name included.
They passed as text holding no encoded object. Like the PS3.19 XML model they
are refused (unparseable-dicom), not rewritten.
"""

from __future__ import annotations

import subprocess

import pytest
from pydicom import dcmread

from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.support.synthetic import make_ct

CT = make_ct(73, rows=4, columns=4, signatures=False)


@pytest.mark.parametrize("form", ["dcm2xml", "dcmdump"])
def test_an_object_in_a_dcmtk_text_form_is_refused(tmp_path, form):
    (tmp_path / "in.dcm").write_bytes(CT.data)
    if form == "dcm2xml":
        text = subprocess.run(["dcm2xml", "+Wb", "in.dcm"], cwd=tmp_path, capture_output=True, check=True).stdout
        back = ["xml2dcm", "text", "out.dcm"]
    else:
        text = subprocess.run(["dcmdump", "+L", "in.dcm"], cwd=tmp_path, capture_output=True, check=True).stdout
        back = ["dump2dcm", "text", "out.dcm"]
    (tmp_path / "text").write_bytes(text)
    subprocess.run(back, cwd=tmp_path, capture_output=True, check=True)
    assert str(dcmread(tmp_path / "out.dcm").PatientName) == str(dcmread(tmp_path / "in.dcm").PatientName)
    with pytest.raises(Blocked) as info:
        walk("application/xml" if form == "dcm2xml" else "text/plain", text)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_text_that_mentions_a_tag_passes():
    body = b"Patient's Name is (0010,0010); see the standard's table (0010,0020) for the ID.\n" * 20
    assert walk("text/plain", body)[0].body is body
