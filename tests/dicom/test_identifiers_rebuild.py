"""Keyed UIDs, referential integrity, dates, markers, the clean rebuild and the pixel hook."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset

from icapdlp.dicom.keyed import keyed_uid
from icapdlp.dicom.pipeline import deidentify_bytes, deidentify_dataset, header_only_rewrite
from icapdlp.dicom.pixel_hook import PixelCleaner
from icapdlp.report import ObjectReport
from icapdlp.verdict import Blocked, BlockReason
from tests.dicom.helpers import OTHER_KEY, TEST_KEY, config, run
from tests.support.synthetic import make_ct, make_study, to_bytes

ROOT = Path(__file__).resolve().parents[2]
UID_SHAPE = re.compile(r"2\.25\.(0|[1-9][0-9]*)")


def test_keyed_uid_shape_and_keying():
    uid = keyed_uid(TEST_KEY, "1.2.3.4")
    assert UID_SHAPE.fullmatch(uid) and len(uid) <= 64 and int(uid[5:]) < 2**128
    assert keyed_uid(TEST_KEY, "1.2.3.4") == uid != keyed_uid(OTHER_KEY, "1.2.3.4")
    assert keyed_uid(TEST_KEY, "1.2.3.4\0") == uid  # padding is not part of the UID


def test_referential_integrity_across_a_study():
    study = make_study(2, 3, seed=21)
    outs = [run(obj.data)[1] for obj in study]
    assert len({o.StudyInstanceUID for o in outs}) == 1
    assert len({o.SeriesInstanceUID for o in outs}) == 2
    sop_uids = {o.SOPInstanceUID for o in outs}
    assert len(sop_uids) == 6
    for obj, out in zip(study, outs):
        for original, mapped in zip(obj.dataset.ReferencedImageSequence, out.ReferencedImageSequence):
            target = original.ReferencedSOPInstanceUID
            if target in {o.dataset.SOPInstanceUID for o in study}:
                assert mapped.ReferencedSOPInstanceUID in sop_uids
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


_SUBPROCESS = """
import sys
from tests.dicom.helpers import config
from tests.support.synthetic import make_ct
from icapdlp.dicom.pipeline import deidentify_bytes
key = bytes.fromhex(sys.argv[1])
sys.stdout.write(deidentify_bytes(make_ct(5).data, config(key=key)).data.hex())
"""


def test_uids_stable_across_processes_and_unrelated_under_another_key():
    def once(key: bytes) -> pydicom.Dataset:
        out = subprocess.run([sys.executable, "-c", _SUBPROCESS, key.hex()], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        return pydicom.dcmread(io.BytesIO(bytes.fromhex(out)))
    first, second, other = once(TEST_KEY), once(TEST_KEY), once(OTHER_KEY)
    assert first.SOPInstanceUID == second.SOPInstanceUID == keyed_uid(TEST_KEY, make_ct(5).dataset.SOPInstanceUID)
    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert other.SOPInstanceUID != first.SOPInstanceUID
    assert other.StudyInstanceUID != first.StudyInstanceUID


def test_output_is_deterministic():
    obj = make_ct(6)
    assert deidentify_bytes(obj.data, config()).data == deidentify_bytes(obj.data, config()).data


def test_modified_dates_keep_intervals_across_midnight():
    a, b = make_ct(7), make_ct(7, instance_number=2)
    cfg = config(longitudinal_dates="modified")
    result, out = run(a.data, cfg)
    _, out_b = run(b.data, cfg)
    assert out.StudyDate != a.dataset.StudyDate and out.StudyDate == out_b.StudyDate  # one offset per patient
    import datetime as dt
    def day(text): return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    # acquisition is one day after the study date; acquisition time is after midnight
    assert day(out.AcquisitionDate) - day(out.StudyDate) == day(a.dataset.AcquisitionDate) - day(a.dataset.StudyDate)
    assert out.AcquisitionDateTime[8:] == a.dataset.AcquisitionDateTime[8:]
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "113107" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert a.surviving(result.data) == []


def test_modified_dates_keep_age_coherent():
    obj = make_ct(8)
    _, out = run(obj.data, config(longitudinal_dates="modified", retain_patient_characteristics=True))
    assert out.PatientAge == obj.dataset.PatientAge
    # birth date is Z in the table even under Modified Dates: age is kept, birth date emptied
    assert not out.PatientBirthDate


def test_file_meta_rebuilt_from_scratch():
    obj = make_ct(9)
    _, out = run(obj.data)
    assert set(out.file_meta.keys()) == {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010,
                                         0x00020012, 0x00020013}
    assert out.file_meta.ImplementationClassUID != obj.dataset.file_meta.ImplementationClassUID


@pytest.mark.parametrize("ts", ["explicit-be", "deflated"])
def test_big_endian_and_deflated_come_out_little_endian(ts):
    native = run(make_ct(10).data)[1]
    result, out = run(make_ct(10, transfer_syntax=ts).data)
    assert out.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (out.pixel_array == native.pixel_array).all()


def test_implicit_input_stays_implicit():
    _, out = run(make_ct(10, transfer_syntax="implicit-le").data)
    assert out.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian


def test_report_counts_and_refs():
    obj = make_ct(11)
    result, _ = run(obj.data)
    report = result.report
    assert report.actions["X"] > 10 and report.actions["U"] >= 4 and report.uids_replaced >= 6
    assert set(report.stage_seconds) == {"parse", "deid", "encode"}
    assert len(report.study_ref) == 16 and report.study_ref != report.instance_ref
    assert obj.dataset.StudyInstanceUID not in repr(report)


def test_report_only_returns_the_original_bytes():
    obj = make_ct(12)
    cfg = config()
    from dataclasses import replace
    result = deidentify_bytes(obj.data, replace(cfg, mode="report-only"))
    assert result.data == obj.data and result.report.actions["X"] > 0


@pytest.mark.parametrize("policy,expect", [("block", BlockReason.ENCAPSULATED_DOCUMENT), ("replace", None)])
def test_encapsulated_documents_by_policy(policy, expect):
    obj = make_ct(13, sop_class="1.2.840.10008.5.1.4.1.1.104.1")
    obj.dataset.EncapsulatedDocument = b"%PDF-1.4 PATIENTPHIDOC"
    from tests.support.synthetic import to_bytes
    data = to_bytes(obj.dataset)
    if expect:
        with pytest.raises(Blocked) as info:
            deidentify_bytes(data, config(encapsulated_documents=policy))
        assert info.value.reason == expect
    else:
        result, _ = run(data, config(encapsulated_documents=policy))
        assert b"PATIENTPHIDOC" not in result.data


class RecordingCleaner:
    """A PixelCleaner double: records the header it saw, then claims to have cleaned."""

    def __init__(self, needs: bool = True) -> None:
        self.needs = needs
        self.seen_name = None

    def needs_cleaning(self, ds: Dataset) -> bool:
        return self.needs

    def clean(self, ds: Dataset, report: ObjectReport) -> None:
        self.seen_name = str(ds.PatientName)
        report.pixels_cleaned = True


def test_pixel_cleaner_runs_on_the_original_and_sets_markers():
    obj = make_ct(14)
    cleaner = RecordingCleaner()
    assert isinstance(cleaner, PixelCleaner)
    result = deidentify_bytes(obj.data, config(clean_pixel_data=True), cleaner)
    out = pydicom.dcmread(io.BytesIO(result.data))
    assert cleaner.seen_name == str(obj.dataset.PatientName)  # the deny-list comes from the original
    assert out.BurnedInAnnotation == "NO"
    assert "113101" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]


def test_pixel_cleaner_not_called_when_option_off_and_no_claim():
    obj = make_ct(14)
    cleaner = RecordingCleaner()
    result = deidentify_bytes(obj.data, config(clean_pixel_data=False), cleaner)
    out = pydicom.dcmread(io.BytesIO(result.data))
    assert cleaner.seen_name is None
    assert "BurnedInAnnotation" not in out
    assert "113101" not in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]


@pytest.mark.parametrize("ts", ["explicit-le", "implicit-le"])
def test_header_only_rewrite_equals_the_full_path(ts):
    obj = make_ct(15, rows=256, columns=256, bits_stored=16, signatures=False, transfer_syntax=ts)
    full = deidentify_bytes(obj.data, config()).data
    rewritten = header_only_rewrite(obj.data[:65536], len(obj.data), config())
    assert rewritten is not None
    prefix, offset, _report = rewritten
    assert prefix + obj.data[offset:] == full


def test_header_only_rewrite_declines_when_unsafe():
    big = make_ct(15, rows=256, columns=256, bits_stored=16, signatures=False)
    assert header_only_rewrite(big.data[:65536], len(big.data) + 10, config()) is None  # trailing bytes
    assert header_only_rewrite(big.data[:65536], len(big.data), config(clean_pixel_data=True),
                               RecordingCleaner(needs=True)) is None
    high_bits = make_ct(15, rows=256, columns=256, bits_stored=12, signatures=False)
    assert header_only_rewrite(high_bits.data[:65536], len(high_bits.data), config()) is None
    assert header_only_rewrite(big.data[:200], len(big.data), config()) is None  # header not inside
    be = make_ct(15, rows=256, columns=256, bits_stored=16, signatures=False, transfer_syntax="explicit-be")
    assert header_only_rewrite(be.data[:65536], len(be.data), config()) is None


def test_deidentify_dataset_for_dicom_json():
    obj = make_ct(16)
    ds = Dataset.from_json(obj.dataset.to_json_dict())
    report = deidentify_dataset(ds, config())
    assert ds.PatientIdentityRemoved == "YES" and ds.SOPInstanceUID.startswith("2.25.")
    assert report.actions["X"] > 0
    assert "QUIXOTEPHI16" not in ds.to_json()


def _dciodvfy_errors(data: bytes, tmp_path: Path, name: str) -> set[str]:
    path = tmp_path / name
    path.write_bytes(data)
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    # keep the message kind and the attribute, drop the values it quotes ("[1] = <value>")
    return {re.sub(r"\[\d+\] = <[^>]*>", "", line).strip() for line in lines if line.startswith("Error")}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
@pytest.mark.parametrize("maker", ["ct", "pydicom-ct", "pydicom-mr"])
def test_dciodvfy_reports_no_new_errors(maker, tmp_path):
    if maker == "ct":
        data = make_ct(17, signatures=False).data
    else:
        from pydicom.data import get_testdata_file
        data = Path(get_testdata_file({"pydicom-ct": "CT_small.dcm", "pydicom-mr": "MR_small.dcm"}[maker])).read_bytes()
    before = _dciodvfy_errors(data, tmp_path, "in.dcm")
    after = _dciodvfy_errors(deidentify_bytes(data, config()).data, tmp_path, "out.dcm")
    assert after - before == set()


def test_header_only_rewrite_reports_what_the_full_path_reports():
    obj = make_ct(15, rows=256, columns=256, bits_stored=16, signatures=False, frames=2)
    full = deidentify_bytes(obj.data, config(clean_pixel_data=True), RecordingCleaner(needs=False))
    answer = header_only_rewrite(obj.data[:65536], len(obj.data), config(clean_pixel_data=True),
                                             RecordingCleaner(needs=False))
    assert answer is not None
    prefix, offset, report = answer
    assert prefix + obj.data[offset:] == full.data
    assert report.actions == full.report.actions and report.actions["X"] > 0
    assert report.uids_replaced == full.report.uids_replaced > 0
    assert report.frames_skipped == full.report.frames_skipped == 2
    assert report.instance_ref == full.report.instance_ref != ""


def test_header_only_rewrite_declines_pixels_longer_than_their_geometry():
    obj = make_ct(15, rows=256, columns=256, bits_stored=16, signatures=False)
    ds = obj.dataset
    ds.PixelData = ds.PixelData + bytes(64)
    data = to_bytes(ds)
    assert header_only_rewrite(data[:65536], len(data), config()) is None
