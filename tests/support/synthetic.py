"""Deterministic synthetic DICOM objects with planted PHI, for tests and benchmarks.

Why: tests must prove at byte level that no identifying value survives
de-identification, and that needs objects where we know every identifying
value and where it hides. Nothing here is real patient data; every value is
derived from ``seed`` so two runs produce the same bytes (golden tests work),
and no binary fixture is committed.

PHI is planted in every kind of place the pipeline has to reach: top level,
sequences nested three deep, multi-valued elements, private blocks (with a
private creator), the File Meta Information, overlays (60xx) and curves
(50xx), the Icon Image Sequence, the Original Attributes Sequence, digital
signatures, referenced SOP Instance UIDs, and the unused high bits of the
pixel data (an "embedded overlay").

Pixel size and frame count are parameters, so callers can make a tiny object
or a > 64 MiB one cheaply (pixels are a repeating numpy pattern).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from pydicom import Dataset, Sequence
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

#: private creator whose block the tests declare "safe" (Retain Safe Private)
SAFE_CREATOR = "SYNTH SAFE BLOCK"
#: private creator whose block holds PHI and must always go
UNSAFE_CREATOR = "SYNTH PHI VENDOR"
#: a stable SOP class for the multi-frame object
MULTIFRAME_CLASS = UID("1.2.840.10008.5.1.4.1.1.7.3")  # Multi-frame Grayscale Word SC
#: the value written into the safe private block; not PHI, survives Retain Safe Private
SAFE_PRIVATE_VALUE = "SAFEVALUE42"
#: bit set in some pixels above High Bit (an embedded overlay the pipeline must zero)
HIGH_BIT_PLANT = 0x8000

TRANSFER_SYNTAXES = {
    "explicit-le": ExplicitVRLittleEndian,
    "implicit-le": ImplicitVRLittleEndian,
    "explicit-be": ExplicitVRBigEndian,
    "deflated": DeflatedExplicitVRLittleEndian,
}


@dataclass
class Patient:
    """One synthetic patient; values derived from ``seed``."""

    seed: int = 0

    @property
    def name(self) -> str:
        return f"QUIXOTEPHI{self.seed}^ALONSOPHI{self.seed}"

    @property
    def patient_id(self) -> str:
        return f"PIDPHI{self.seed:05d}X"

    @property
    def birth_date(self) -> str:
        return f"1961{(self.seed % 9) + 1:02d}{(self.seed % 19) + 10:02d}"

    @property
    def address(self) -> str:
        return f"{self.seed + 17} LAMANCHAPHI STREET"


@dataclass
class Synthetic:
    """A generated object plus everything planted in it."""

    dataset: Dataset
    data: bytes
    #: planted identifying strings (names, IDs, addresses, free text)
    phi_strings: list[str] = field(default_factory=list)
    #: original instance UIDs (study, series, SOP instance, frame of reference, references)
    phi_uids: list[str] = field(default_factory=list)
    #: original dates (DA form, YYYYMMDD)
    phi_dates: list[str] = field(default_factory=list)

    @property
    def planted(self) -> list[str]:
        return self.phi_strings + self.phi_uids + self.phi_dates

    def surviving(self, output: bytes, *, keep: set[str] = frozenset()) -> list[str]:
        """Planted values (minus ``keep``) found anywhere in ``output`` bytes."""
        return [p for p in self.planted if p not in keep and p.encode("ascii") in output]


def _uid(seed: int, label: str) -> str:
    return str(generate_uid(entropy_srcs=["icapdlp-synthetic", str(seed), label]))


def _phi(seed: int, label: str) -> str:
    """A distinctive planted token: cannot occur by accident in pixels or UIDs."""
    return f"{label.upper()}PHI{seed}Q"


def make_ct(
    seed: int = 0,
    *,
    rows: int = 16,
    columns: int = 16,
    frames: int = 1,
    patient: Patient | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
    referenced_uids: list[str] | None = None,
    transfer_syntax: str = "explicit-le",
    bare: bool = False,
    bits_stored: int = 12,
    sop_class: str = CTImageStorage,
    signatures: bool = True,
) -> Synthetic:
    """A CT-like image with PHI planted everywhere.

    ``transfer_syntax``: one of TRANSFER_SYNTAXES; ``bare`` writes the dataset
    without preamble and File Meta Information (as DIMSE tools do).
    ``referenced_uids``: SOP Instance UIDs of other objects this one references.
    ``signatures``: add a Digital Signatures Sequence (it follows Pixel Data in the file).
    """
    patient = patient or Patient(seed)
    planted_strings: list[str] = [patient.name.split("^")[0], patient.name.split("^")[1],
                                  patient.patient_id, "LAMANCHAPHI"]
    planted_dates = [patient.birth_date]
    study_uid = study_uid or _uid(seed, "study")
    series_uid = series_uid or _uid(seed, "series")
    sop_uid = _uid(seed * 1000 + instance_number, f"sop-{series_uid}")
    frame_uid = _uid(seed, "frame-of-reference")
    uids = [study_uid, series_uid, sop_uid, frame_uid]

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    study_date = f"2019{(seed % 12) + 1:02d}{(seed % 17) + 11:02d}"
    acq_date = f"2019{(seed % 12) + 1:02d}{(seed % 17) + 12:02d}"
    planted_dates += [study_date, acq_date]
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = acq_date
    ds.ContentDate = acq_date
    ds.AcquisitionDateTime = acq_date + "234559.000000"
    ds.StudyTime = "235930"
    ds.SeriesTime = "235931"
    ds.AcquisitionTime = "000105"  # after midnight: across-midnight interval
    ds.ContentTime = "000106"
    ds.AccessionNumber = _phi(seed, "acc")
    ds.Modality = "CT"
    ds.Manufacturer = "SYNTHETIC MEDICAL"
    ds.InstitutionName = _phi(seed, "hospital")
    ds.InstitutionAddress = _phi(seed, "instaddr")
    ds.ReferringPhysicianName = _phi(seed, "refphys") + "^DOC"
    ds.StationName = _phi(seed, "station")
    ds.StudyDescription = _phi(seed, "studydesc") + " CHEST"
    ds.SeriesDescription = _phi(seed, "seriesdesc")
    ds.PhysiciansOfRecord = [_phi(seed, "physa") + "^A", _phi(seed, "physb") + "^B"]  # multi-valued
    ds.OperatorsName = _phi(seed, "operator")
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = "F"
    ds.PatientAge = "057Y"
    ds.OtherPatientIDs = [_phi(seed, "otherida"), _phi(seed, "otheridb")]  # multi-valued
    ds.OtherPatientNames = [_phi(seed, "aliasa") + "^X", _phi(seed, "aliasb") + "^Y"]
    ds.PatientAddress = patient.address
    ds.AdditionalPatientHistory = _phi(seed, "history")
    ds.DeviceSerialNumber = _phi(seed, "serial")
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.25"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = _phi(seed, "studyid")[:16]
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.FrameOfReferenceUID = frame_uid
    ds.ImageComments = _phi(seed, "comments")
    planted_strings += [ds.AccessionNumber, ds.InstitutionName, ds.InstitutionAddress,
                        _phi(seed, "refphys"), ds.StationName, _phi(seed, "studydesc"),
                        ds.SeriesDescription, _phi(seed, "physa"), _phi(seed, "physb"),
                        ds.OperatorsName, _phi(seed, "otherida"), _phi(seed, "otheridb"),
                        _phi(seed, "aliasa"), _phi(seed, "aliasb"), ds.AdditionalPatientHistory,
                        ds.DeviceSerialNumber, ds.StudyID, ds.ImageComments]

    # References to other instances (top level and nested).
    refs = list(referenced_uids or [_uid(seed, "ref-a"), _uid(seed, "ref-b")])
    uids += [u for u in refs if u not in uids]
    ref_items = []
    for ref in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = ref
        ref_items.append(item)
    ds.ReferencedImageSequence = Sequence(ref_items)

    # Depth 3: Request Attributes > Referenced Study > ... and Other Patient IDs > Issuer > Facility.
    facility = Dataset()
    facility.LocalNamespaceEntityID = _phi(seed, "facility")
    issuer = Dataset()
    issuer.AssigningFacilitySequence = Sequence([facility])
    issuer.UniversalEntityID = _phi(seed, "entity")
    other = Dataset()
    other.PatientID = _phi(seed, "nestedpid")
    other.TypeOfPatientID = "TEXT"
    other.IssuerOfPatientIDQualifiersSequence = Sequence([issuer])
    ds.OtherPatientIDsSequence = Sequence([other])
    planted_strings += [_phi(seed, "facility"), _phi(seed, "entity"), _phi(seed, "nestedpid")]

    deep_ref = Dataset()
    deep_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    deep_ref.ReferencedSOPInstanceUID = _uid(seed, "deep-ref")
    step = Dataset()
    step.ReferencedStudySequence = Sequence([deep_ref])
    step.RequestedProcedureDescription = _phi(seed, "procdesc")
    step.ScheduledProcedureStepID = _phi(seed, "spsid")[:16]
    step.RequestedProcedureID = _phi(seed, "rpid")[:16]
    ds.RequestAttributesSequence = Sequence([step])
    uids.append(deep_ref.ReferencedSOPInstanceUID)
    planted_strings += [_phi(seed, "procdesc"), step.ScheduledProcedureStepID, step.RequestedProcedureID]

    # Structured content nested three deep with a person name and free text.
    leaf = Dataset()
    leaf.RelationshipType = "CONTAINS"
    leaf.ValueType = "PNAME"
    leaf.PersonName = _phi(seed, "srperson") + "^SR"
    mid = Dataset()
    mid.RelationshipType = "CONTAINS"
    mid.ValueType = "TEXT"
    mid.TextValue = _phi(seed, "srtext")
    mid.ContentSequence = Sequence([leaf])
    top = Dataset()
    top.RelationshipType = "CONTAINS"
    top.ValueType = "CONTAINER"
    top.ContentSequence = Sequence([mid])
    ds.ContentSequence = Sequence([top])
    planted_strings += [_phi(seed, "srperson"), _phi(seed, "srtext")]

    # Private blocks: one unsafe (PHI), one safe (kept under Retain Safe Private).
    unsafe = ds.private_block(0x0009, UNSAFE_CREATOR, create=True)
    unsafe.add_new(0x01, "LO", _phi(seed, "private"))
    unsafe.add_new(0x02, "UI", _uid(seed, "private-uid"))
    inner = Dataset()
    inner.add_new(0x00090010, "LO", UNSAFE_CREATOR)
    inner.add_new(0x00091001, "LO", _phi(seed, "privnested"))
    unsafe.add_new(0x03, "SQ", Sequence([inner]))
    safe = ds.private_block(0x0011, SAFE_CREATOR, create=True)
    safe.add_new(0x01, "LO", SAFE_PRIVATE_VALUE)
    planted_strings += [_phi(seed, "private"), _phi(seed, "privnested"), UNSAFE_CREATOR]
    uids.append(_uid(seed, "private-uid"))

    # Overlay (60xx) and curve (50xx) with text.
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", columns)
    ds.add_new(0x60000022, "LO", _phi(seed, "overlaydesc"))
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    overlay = _phi(seed, "overlaybits").encode().ljust((rows * columns + 7) // 8, b"\0")
    ds.add_new(0x60003000, "OW", overlay[: ((rows * columns + 15) // 16) * 2].ljust(2, b"\0"))
    ds.add_new(0x60004000, "LT", _phi(seed, "overlaycomment"))
    ds.add_new(0x50002500, "LO", _phi(seed, "curvelabel"))
    planted_strings += [_phi(seed, "overlaydesc"), _phi(seed, "overlaycomment"), _phi(seed, "curvelabel")]
    if rows * columns >= 8 * len(_phi(seed, "overlaybits")):
        planted_strings.append(_phi(seed, "overlaybits"))

    # Icon image, original attributes, digital signature.
    icon = Dataset()
    icon.Rows, icon.Columns = 4, 4
    icon.SamplesPerPixel = 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = _phi(seed, "icon").encode().ljust(16, b"\0")[:16]
    ds.IconImageSequence = Sequence([icon])
    modified = Dataset()
    modified.PatientName = _phi(seed, "oldname") + "^OLD"
    original = Dataset()
    original.ModifiedAttributesSequence = Sequence([modified])
    original.AttributeModificationDateTime = "20180101120000"
    original.ModifyingSystem = "SYNTH"
    original.ReasonForTheAttributeModification = "CORRECT"
    ds.OriginalAttributesSequence = Sequence([original])
    planted_strings += [_phi(seed, "oldname")]
    if len(_phi(seed, "icon")) <= 16:
        planted_strings.append(_phi(seed, "icon"))
    mac = Dataset()
    mac.MACIDNumber = 1
    mac.MACCalculationTransferSyntaxUID = ExplicitVRLittleEndian
    mac.MACAlgorithm = "SHA256"
    mac.DataElementsSigned = [0x00100010]
    ds.MACParametersSequence = Sequence([mac])
    signature = Dataset()
    signature.MACIDNumber = 1
    signature.DigitalSignatureUID = _uid(seed, "signature")
    signature.DigitalSignatureDateTime = "20190101000000"
    signature.CertificateType = "X509_1993_SIG"
    signature.CertificateOfSigner = _phi(seed, "certsigner").encode().ljust(32, b"\0")
    signature.Signature = b"\x01" * 32
    if signatures:
        ds.DigitalSignaturesSequence = Sequence([signature])
        planted_strings.append(_phi(seed, "certsigner"))
        uids.append(signature.DigitalSignatureUID)

    # Pixels: 12 of 16 bits used; some pixels carry a bit above High Bit.
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = _pixels(rows, columns, frames, bits_stored, big_endian=transfer_syntax == "explicit-be")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = TRANSFER_SYNTAXES[transfer_syntax]
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.7433.1.1"
    meta.SourceApplicationEntityTitle = _phi(seed, "srcae")[:16]
    meta.SendingApplicationEntityTitle = _phi(seed, "sendae")[:16]
    meta.PrivateInformationCreatorUID = _uid(seed, "meta-private")
    meta.PrivateInformation = _phi(seed, "metaprivate").encode()
    ds.file_meta = meta
    planted_strings += [meta.SourceApplicationEntityTitle, meta.SendingApplicationEntityTitle,
                        _phi(seed, "metaprivate")]
    uids.append(meta.PrivateInformationCreatorUID)

    data = to_bytes(ds, transfer_syntax=transfer_syntax, bare=bare)
    return Synthetic(ds, data, _unique(planted_strings), _unique(uids), _unique(planted_dates))


def make_multiframe(seed: int = 0, *, frames: int = 8, rows: int = 32, columns: int = 32,
                    **kwargs) -> Synthetic:
    """A multi-frame object (e.g. 33 frames of 1024x1024 for a > 64 MiB body)."""
    return make_ct(seed, rows=rows, columns=columns, frames=frames, sop_class=MULTIFRAME_CLASS, **kwargs)


def make_study(n_series: int = 2, n_instances: int = 3, *, seed: int = 0, rows: int = 8,
               columns: int = 8, **kwargs) -> list[Synthetic]:
    """One patient's study: shared Study UID, one Series UID per series, cross references.

    Every instance references the previous instance of its series (or the first
    instance of the study), so referential integrity can be checked after
    de-identification.
    """
    patient = Patient(seed)
    study_uid = _uid(seed, "study")
    made: list[Synthetic] = []
    first_sop: str | None = None
    for s in range(n_series):
        series_uid = _uid(seed * 100 + s, "series")
        previous: str | None = None
        for i in range(n_instances):
            target = previous or first_sop
            refs = [target] if target else None
            obj = make_ct(seed, rows=rows, columns=columns, patient=patient, study_uid=study_uid,
                          series_uid=series_uid, instance_number=s * 1000 + i + 1,
                          referenced_uids=refs, **kwargs)
            previous = obj.dataset.SOPInstanceUID
            first_sop = first_sop or previous
            made.append(obj)
    return made


def make_large_sequences(seed: int = 0, *, items: int = 2000, **kwargs) -> Synthetic:
    """An object with a long sequence of referenced instances (a big header)."""
    refs = [_uid(seed * 100000 + i, "many-ref") for i in range(items)]
    return make_ct(seed, referenced_uids=refs, **kwargs)


def to_bytes(ds: Dataset, *, transfer_syntax: str = "explicit-le", bare: bool = False) -> bytes:
    """Encode ``ds`` as Part-10 (or a bare dataset) in the named transfer syntax."""
    buf = io.BytesIO()
    ts = UID(TRANSFER_SYNTAXES[transfer_syntax])
    if bare:
        saved = ds.file_meta
        del ds.file_meta
        try:
            dcmwrite(buf, ds, implicit_vr=ts.is_implicit_VR, little_endian=ts.is_little_endian,
                     enforce_file_format=False)
        finally:
            ds.file_meta = saved
        return buf.getvalue()
    ds.file_meta.TransferSyntaxUID = ts
    ds.preamble = b"\0" * 128
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _pixels(rows: int, columns: int, frames: int, bits_stored: int, *, big_endian: bool) -> bytes:
    """A cheap deterministic ramp; every 7th pixel carries a bit above High Bit."""
    count = rows * columns * frames
    ramp = (np.arange(count, dtype=np.uint32) % (1 << min(bits_stored, 12))).astype(np.uint16)
    if bits_stored < 16:
        ramp[::7] |= HIGH_BIT_PLANT
    return ramp.astype(">u2" if big_endian else "<u2").tobytes()


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v))
