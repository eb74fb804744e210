"""Every row of PS3.15 Table E.1-1 is exercised, under the basic profile and its options.

Each row's tag is put into a small object with a value valid for its VR (the
VR comes from pydicom's dictionary, which knows every tag of the 2024b
table), the pipeline runs, and the output is checked against the action the
row resolves to: X absent, Z empty, D non-empty dummy, K unchanged, C
changed or kept per option, U a keyed 2.25 UID. Values are also checked at
byte level for the value-removing actions.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset, Sequence
from pydicom.datadict import dictionary_VR

from icapdlp.dicom import iod, ps315_table
from icapdlp.dicom.keyed import keyed_uid
from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.profile import active_columns, resolve
from tests.dicom.helpers import TEST_KEY, config
from icapdlp.dicom.pipeline import deidentify_bytes

ROOT = Path(__file__).resolve().parents[2]
PLANT = "ROWPHIVALUE"
PLANT_UID = "1.2.826.0.1.3680043.10.9999.42"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
#: the profile that switches on every option column (full dates chosen for the date columns)
ALL_OPTIONS = ProfileOptions(
    clean_pixel_data=False, clean_graphics=True, clean_structured_content=True, clean_descriptors=True,
    longitudinal_dates="modified", retain_patient_characteristics=True, retain_device_identity=True,
    retain_uids=True, retain_safe_private=True, retain_institution_identity=True)
PROFILES = {"basic": ProfileOptions(clean_pixel_data=False), "all-options": ALL_OPTIONS}


def value_for(vr: str):
    return {
        "AE": "ROWPHIAE", "AS": "042Y", "CS": "ROWPHICS", "DA": "20190612", "DS": "4.2",
        "DT": "20190612101010", "IS": "42", "TM": "101010", "UI": PLANT_UID, "UR": "http://rowphi.example/x",
        "FL": 4.5, "FD": 4.5, "SL": 42, "SS": 42, "UL": 42, "US": 42, "SV": 42, "UV": 42, "AT": 0x00100010,
        "OB": b"ROWPHIVALUE\0", "OW": b"ROWPHIVALUE\0", "UN": b"ROWPHIVALUE\0", "OF": b"ROWPHIVALUE\0",
        "OD": b"ROWPHIVALUE\0ROWP", "OL": b"ROWPHIVALUE\0", "OV": b"ROWPHIVALUE\0ROWP",
    }.get(vr, PLANT)


def build(tag: int) -> tuple[bytes, str, object]:
    vr = dictionary_VR(tag).split(" or ")[0]
    if vr == "US or SS":
        vr = "US"
    ds = Dataset()
    ds.SOPClassUID = SC_IMAGE
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.9999.1"
    if vr == "SQ":
        item = Dataset()
        item.CodeValue = "ROWCODE"
        item.PatientName = PLANT + "^NESTED"
        value = Sequence([item])
    else:
        value = value_for(vr)
    if tag not in (0x00080016, 0x00080018):
        ds.add_new(tag, vr, value)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue(), vr, value


def _rows():
    for value, _mask, name, basic, options in ps315_table.ROWS:
        if value >> 16 in (0x0000, 0x0002) or value in (0x00080018, 0xFFFAFFFA):
            continue  # command/meta rows, SOP Instance UID, signatures: see test_rebuild.py
        yield pytest.param(value, basic, options, id=f"{value:08X}-{name[:30]}")
    for value, _mask, name, basic, options in ps315_table.PATTERN_ROWS:
        for group in (0x0000, 0x0012):  # first and a later repeating group
            tag = value | (group << 16) | (0x2500 if value >> 24 == 0x50 else 0)
            yield pytest.param(tag, basic, options, id=f"{tag:08X}-{name}")


@pytest.mark.parametrize("profile_name", PROFILES)
@pytest.mark.parametrize("tag,basic,options", list(_rows()))
def test_row(tag, basic, options, profile_name):
    profile = PROFILES[profile_name]
    action = resolve(basic, options, active_columns(profile))
    if action in iod.COMPOUND_CODES:  # decided by the Type in the Secondary Capture IOD
        action = iod.decide(iod.types_for(SC_IMAGE), (tag,))
    data, vr, original = build(tag)
    result = deidentify_bytes(data, config(profile))
    out = pydicom.dcmread(io.BytesIO(result.data))
    group = tag >> 16
    if (group & 0xFFE1) in (0x5000, 0x6000):  # curves/overlays: whole group rules
        # under Clean Graphics curves are cleaned, overlay planes still removed whole (test_overlays.py)
        expect_gone = not profile.clean_graphics or group & 0xFFE1 == 0x6000
        assert (tag in out) != expect_gone
        return
    if tag in (0x04000561, 0x00880200):
        assert tag not in out  # always removed
        return
    if group == 0x0004:  # directory-record attributes (U in the table) exist only in a DICOMDIR;
        assert tag not in out  # at an image's top level they are misplaced and removed (ACTIONS.md)
        return
    elem = out.get(tag)
    planted = PLANT_UID.encode() if vr == "UI" else PLANT.encode()
    if action == "X":
        assert elem is None
        assert planted not in result.data
    elif action == "Z":
        assert elem is not None and (elem.is_empty or vr == "SQ" and len(elem.value) == 0)
        assert planted not in result.data
    elif action in ("D", "U", "U*") and vr != "SQ":
        assert elem is not None and not elem.is_empty
        assert elem.value != original
        if vr == "UI":
            assert elem.value == keyed_uid(TEST_KEY, PLANT_UID)
        assert planted not in result.data
    elif vr == "SQ":  # D, K, C, U*: the sequence stays, its contents are processed
        assert elem is not None and len(elem.value) == 1
        assert elem.value[0].CodeValue == "ROWCODE"
        assert (PLANT + "^NESTED").encode() not in result.data
    elif action == "K":
        assert elem is not None and elem.value == original
    elif action == "C":
        assert elem is not None
        if vr == "DA":
            assert elem.value != original and len(elem.value) == 8  # shifted by the keyed offset
        elif vr == "AE":
            assert elem.value != original
    else:  # pragma: no cover - a new action code would land here
        pytest.fail(f"unhandled action {action}")


def test_generated_table_is_current():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_ps315_table.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert ps315_table.EDITION == "2024b" and ps315_table.ROW_COUNT == 621


def test_check_fails_on_a_stale_table(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_ps315_table as gen
    finally:
        sys.path.pop(0)
    stale = tmp_path / "ps315_table.py"
    stale.write_text(gen.render(gen.SOURCE.read_bytes()).replace("'Z'", "'K'", 1))
    monkeypatch.setattr(gen, "TARGET", stale)
    assert gen.main(["--check"]) == 1
    monkeypatch.setattr(gen, "TARGET", tmp_path / "fresh.py")
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0


def test_pattern_and_private_rows_are_parsed():
    patterns = {name: (value, mask) for value, mask, name, _b, _o in ps315_table.PATTERN_ROWS}
    value, mask = patterns["Overlay Data"]
    assert 0x601E3000 & mask == value and 0x60203000 & mask != value and 0x60013000 & mask != value
    value, mask = patterns["Curve Data"]
    assert 0x50002500 & mask == value and 0x501E0010 & mask == value
    assert ps315_table.PRIVATE_ROW == ("Private Attributes", "X", (("rtnSafePrivOpt", "C"),))
    names = {row[2] for row in ps315_table.ROWS}
    assert "Icon Image Sequence" in names  # line break and "(see Note 11)" removed
