"""Apply the PS3.15 actions to a pydicom Dataset, at every depth, in place.

Why one walker for every depth: peers that process only the top level leak
names from nested sequences and leave nested Referenced SOP Instance UIDs
unmapped, which both leaks and breaks references. Here every item of every
sequence is walked with the same rules, and a sequence's own action decides
how its contents are treated:

- K, U* (X/Z/U*): contents processed with the normal rules;
- D: contents processed in "dummy" mode (free text, names and dates not
  listed in the table are replaced by dummies; codes and numbers stay);
- C: contents processed in "clean" mode (text cleaned, dates shifted);
- Z: emptied; X: removed.

Attributes the table does not list are kept, except instance UIDs (every
non-structural UI value is replaced so references stay consistent), private
elements, curves/overlays, and the always-removed sequences. A standard-group
element whose tag is in neither the current data dictionary (retired entries
excluded) nor the table is removed (fail closed): nothing is known about what
it holds, and one flipped tag bit is enough to move Institution Name to such
a tag and past the table. Identifier-bearing attributes the table does not
list follow the project rules of ``profile`` (see ACTIONS.md).
"""

from __future__ import annotations

from pydicom import Dataset, Sequence
from pydicom.dataelem import DataElement
from functools import lru_cache

from pydicom.datadict import dictionary_VR, get_entry, tag_for_keyword

from icapdlp.dicom import iod, keyed
from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.reader import decoded_element
from icapdlp.dicom.profile import SEQUENCE_ONLY_TAGS, STANDARD_UID_PREFIX, STRUCTURAL_UID_TAGS, action_table
from icapdlp.dicom.values import (
    DATE_VRS,
    TEXT_VRS,
    TextCleaner,
    dummy,
    shift_da,
    shift_dt,
    tokens_of,
)
from icapdlp.report import CdrFinding, ObjectReport

#: removed whatever the table says: signatures, MACs, encrypted and original
#: attributes, icons, padding, command and meta groups misplaced in the body
ALWAYS_REMOVE = frozenset({
    0xFFFAFFFA,  # Digital Signatures Sequence
    0x4FFE0001,  # MAC Parameters Sequence
    0x04000500,  # Encrypted Attributes Sequence
    0x04000561,  # Original Attributes Sequence
    0x00880200,  # Icon Image Sequence
    0xFFFCFFFC,  # Data Set Trailing Padding
    0x00080001,  # Length to End (retired; would be wrong after rewriting)
})
#: Directory Information (PS3.3 F.5): only in a DICOMDIR's header and its directory records
DIRECTORY_GROUP = 0x0004
PATIENT_NAME, PATIENT_ID, ISSUER_OF_PATIENT_ID = 0x00100010, 0x00100020, 0x00100021
STUDY_UID = 0x0020000D
#: curve groups 50xx and overlay groups 60xx (even xx, PS3.5 7.6 repeating groups), by mask
GRAPHICS_GROUP_MASK, CURVE_GROUP_BASE, OVERLAY_GROUP_BASE = 0xFFE1, 0x5000, 0x6000
#: elements that carry codes, not free text; kept inside D / C sequences
CODE_TAGS = frozenset(
    {0x0008_0000 | e for e in range(0x0100, 0x0123)}
    | {0x0040A010, 0x0040A040, 0x0040A050, 0x0040A043, 0x0040A168, 0x004008EA, 0x0040A30A})
#: attributes whose values feed the deny-list of the text cleaner
IDENTITY_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "AccessionNumber",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "ReferringPhysicianName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "OperatorsName", "PhysiciansOfRecord", "RequestingPhysician", "DeviceSerialNumber", "StudyID",
    "MilitaryRank", "BranchOfService", "MedicalRecordLocator", "RegionOfResidence",
    "CountryOfResidence", "PatientBirthDate", "IssuerOfPatientID",
)

IDENTITY_TAGS = frozenset(int(tag_for_keyword(k)) for k in IDENTITY_KEYWORDS)


class HeaderDeidentifier:
    """Runs the profile over one dataset; counts what it did into ``report``."""

    def __init__(self, profile: ProfileOptions, key: bytes, report: ObjectReport) -> None:
        self.profile = profile
        self.key = key
        self.report = report
        self.table = action_table(profile)
        self.date_offset = 0
        self._types: dict[tuple[int, ...], int] = iod.types_for("")
        self._cleaner: TextCleaner | None = None
        self._deny: set[str] = set()

    # -- set-up -------------------------------------------------------------

    def prepare(self, ds: Dataset) -> None:
        """Set up before the walk: drop misplaced elements, then read date offset and deny-list.

        Misplaced: top-level elements the Standard defines only inside sequence items
        (profile.SEQUENCE_ONLY_TAGS), and every Directory Information element (group 0004,
        defined only in a DICOMDIR, which the pipeline blocks before this; Referenced File ID
        holds a path, often named after the patient); they come from a broken sequence or a
        crafted file.
        """
        self._types = iod.types_for(str(ds.get("SOPClassUID", "") or "").strip("\0 "))
        misplaced = [tag for tag in ds.keys() if tag >> 16 == DIRECTORY_GROUP or tag in SEQUENCE_ONLY_TAGS]
        for tag in misplaced:
            self._remove(ds, tag)
            self.report.cdr_findings[CdrFinding.MISPLACED_ATTRIBUTE] += 1
        if self.profile.longitudinal_dates == "modified":
            identity = _text(ds.get(PATIENT_ID)) + "\0" + _text(ds.get(ISSUER_OF_PATIENT_ID))
            if not identity.strip("\0"):
                identity = _text(ds.get(PATIENT_NAME)) or _text(ds.get(STUDY_UID))
            self.date_offset = keyed.date_offset_days(self.key, identity,
                                                      self.profile.date_shift_max_days)
        profile = self.profile
        if (profile.clean_descriptors or profile.clean_structured_content or profile.clean_graphics
                or profile.retain_patient_characteristics):
            self._collect_identity(ds, 0)  # only options with C on text need the deny-list
        self._cleaner = TextCleaner(self._deny)

    def _collect_identity(self, ds: Dataset, depth: int) -> None:
        for elem in ds:
            if elem.tag.is_private:
                continue
            if elem.VR == "PN" or elem.tag in IDENTITY_TAGS:
                for value in _values(elem):
                    self._deny |= tokens_of(str(value))
            elif elem.VR in ("DA", "DT"):
                for value in _values(elem):
                    self._deny.add(str(value)[:8])
            elif elem.VR == "SQ" and elem.value:
                for item in elem.value:
                    self._collect_identity(item, depth + 1)

    # -- walk ---------------------------------------------------------------

    def walk(self, ds: Dataset, mode: str | None = None, path: tuple[int, ...] = ()) -> None:
        """Apply the actions to every element of ``ds`` (and recursively its items).

        ``path``: the sequence tags from the top level down to ``ds``; compound
        actions are decided by the Type the IOD gives the attribute at that path.
        """
        for tag in list(ds.keys()):
            tag = int(tag)
            group, element = tag >> 16, tag & 0xFFFF
            if group % 2 or group in (0x0001, 0x0003, 0x0005, 0x0007):
                self._private(ds, tag, group, element)
            elif element == 0x0000 or group in (0x0000, 0x0002) or tag in ALWAYS_REMOVE:
                self._remove(ds, tag)
            elif (group & GRAPHICS_GROUP_MASK) in (CURVE_GROUP_BASE, OVERLAY_GROUP_BASE):
                self._graphics(ds, tag, group)
            else:
                action = self.table.action(tag)
                if action in iod.COMPOUND_CODES:
                    action = iod.decide(self._types, (*path, tag))
                if action is None and not known_tag(tag):
                    self._remove(ds, tag)
                    self.report.cdr_findings[CdrFinding.UNDEFINED_TAG] += 1
                elif action is None:
                    self._unlisted(ds, decoded_element(ds, tag), mode, path)
                else:
                    self.apply(ds, decoded_element(ds, tag), action, mode, path)

    def apply(self, ds: Dataset, elem: DataElement, action: str, mode: str | None,
              path: tuple[int, ...] = ()) -> None:
        """Apply one concrete action (D, Z, X, K, C, U, U*) to ``elem`` of ``ds``."""
        vr = elem.VR
        if self.profile.pseudonymize_patient and elem.tag in (PATIENT_ID, PATIENT_NAME) and elem.value:
            self._pseudonymize(elem)
            return
        if action == "X":
            self._remove(ds, elem.tag)
            return
        self.report.actions[action] += 1
        if action == "Z":
            elem.value = Sequence() if vr == "SQ" else None
        elif vr == "SQ":
            self._items(elem, {"D": "dummy", "C": "clean"}.get(action, mode), path)
        elif action in ("U", "U*") or (action == "D" and vr == "UI"):
            self._replace_uids(elem)
        elif action == "D":
            elem.value = dummy(vr)
        elif action == "C":
            self._clean(elem)
        elif vr == "UI" and not _uid_syntax(elem):
            self._remove(ds, elem.tag)  # K keeps a UID as is, so it must be a UID
        # K: keep as is

    def _unlisted(self, ds: Dataset, elem: DataElement, mode: str | None, path: tuple[int, ...]) -> None:
        vr = elem.VR
        if vr == "SQ":
            self._items(elem, mode, path)
        elif vr == "UI":
            if not self.profile.retain_uids and elem.tag not in STRUCTURAL_UID_TAGS:
                self._replace_uids(elem)
            elif not _uid_syntax(elem):
                self._remove(ds, elem.tag)  # kept as is, so it must be a UID (PS3.5 9.1: digits, dots)
        elif mode is None or elem.tag in CODE_TAGS or not (vr in TEXT_VRS or vr in DATE_VRS):
            return
        elif mode == "dummy":
            self.report.actions["D"] += 1
            elem.value = dummy(vr)
        else:
            self.report.actions["C"] += 1
            self._clean(elem)

    def _items(self, elem: DataElement, mode: str | None, path: tuple[int, ...] = ()) -> None:
        inner = (*path, int(elem.tag))
        for item in elem.value or ():
            self.walk(item, mode, inner)

    def _remove(self, ds: Dataset, tag: int) -> None:
        del ds[tag]
        self.report.actions["X"] += 1

    # -- special groups -----------------------------------------------------

    def _private(self, ds: Dataset, tag: int, group: int, element: int) -> None:
        """Keep a private element only if its block's creator is on the safe list."""
        creator_tag = tag if 0x0010 <= element <= 0x00FF else (group << 16) | (element >> 8)
        safe = (self.profile.retain_safe_private and element >= 0x0010
                and self.table.private == "C" and _creator(ds, creator_tag) in self._safe_creators())
        if not safe:
            self._remove(ds, tag)
            return
        self.report.actions["C"] += 1
        elem = ds[tag]
        if elem.VR == "SQ":
            self._items(elem, None)
        elif elem.VR == "UI" and not self.profile.retain_uids:
            self._replace_uids(elem)

    def _safe_creators(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.profile.safe_private_creators)

    def _graphics(self, ds: Dataset, tag: int, group: int) -> None:
        """Curves (50xx) and overlays (60xx): removed; under Clean Graphics curves are cleaned
        and overlay planes are still removed, whole, and counted.

        Why an overlay is not "cleaned" in place: its bitmap (60xx,3000) can hold burned-in
        text that nothing here reads, and its Description, Label and Comments are free text a
        deny-list only partly cleans. Blanking the bitmap would keep an empty plane that shows
        nothing, so removal loses no more than blanking and leaves nothing to verify. This is
        the only owner of the overlay decision: the pixel cleaner does not touch 60xx, so the
        output is the same with pixel cleaning on or off. Bits above High Bit in Pixel Data
        (embedded overlays) are zeroed when the object is rebuilt (``rebuild``).
        """
        if tag not in ds:
            return  # its plane was removed with an earlier element of the group
        if not self.profile.clean_graphics:
            self._remove(ds, tag)
        elif group & GRAPHICS_GROUP_MASK == OVERLAY_GROUP_BASE:
            for element in [int(t) for t in ds.keys() if int(t) >> 16 == group]:
                self._remove(ds, element)
            self.report.cdr_findings[CdrFinding.OVERLAY_REMOVED] += 1
        else:
            elem = ds[tag]
            self.report.actions["C"] += 1
            if elem.VR in TEXT_VRS:
                self._clean(elem)

    # -- value rewriting -------------------------------------------------------

    def _pseudonymize(self, elem: DataElement) -> None:
        self.report.actions["C"] += 1
        if elem.tag == PATIENT_ID:
            elem.value = "PID-" + keyed.pseudonym(self.key, "patient-id", _text(elem))
        else:
            elem.value = "ANON^" + keyed.pseudonym(self.key, "patient-name", _text(elem), 12)

    def _replace_uids(self, elem: DataElement) -> None:
        if elem.VR != "UI":
            elem.value = dummy(elem.VR)
            return
        values = _values(elem)
        mapped = []
        for value in values:
            uid = str(value).strip("\0 ")
            mapped.append(replacement_uid(self.key, uid))
            if mapped[-1] != uid:
                self.report.uids_replaced += 1
        elem.value = mapped if elem.VM > 1 else (mapped[0] if mapped else elem.value)

    def _clean(self, elem: DataElement) -> None:
        """C: keep meaning, drop identity (dates shifted, text deny-listed, AE keyed)."""
        vr = elem.VR
        if vr in DATE_VRS:
            self._dates(elem)
        elif vr == "AE":
            elem.value = [("AE" + keyed.pseudonym(self.key, "ae", str(v), 14)) for v in _values(elem)] or None
        elif vr == "PN":
            elem.value = dummy(vr)
        elif vr in TEXT_VRS:
            assert self._cleaner is not None
            cleaned = [self._cleaner.clean(str(v)) for v in _values(elem)]
            elem.value = cleaned if len(cleaned) > 1 else (cleaned[0] if cleaned else None)
        elif vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
            elem.value = dummy(vr)
        # CS, numbers: coded or measured values, kept

    def _dates(self, elem: DataElement) -> None:
        mode = self.profile.longitudinal_dates
        if mode == "full" or elem.VR == "TM" and mode == "modified":
            return  # whole-day shifts keep the time of day
        values = [str(v) for v in _values(elem)]
        if mode != "modified":
            shifted = [dummy(elem.VR) for _ in values]
        elif elem.VR == "DA":
            shifted = [shift_da(v, self.date_offset) for v in values]
        else:
            shifted = [shift_dt(v, self.date_offset) for v in values]
        elem.value = shifted if len(shifted) > 1 else (shifted[0] if shifted else None)


def _values(elem: DataElement) -> list:
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def _text(elem: DataElement | None) -> str:
    if elem is None or elem.value is None:
        return ""
    return str(elem.value).strip()


def _creator(ds: Dataset, creator_tag: int) -> str:
    elem = ds.get(creator_tag)
    if elem is None or elem.value is None:
        return ""
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).strip("\0 ")


def replacement_uid(key: bytes, uid: str) -> str:
    """What an instance UID becomes: UIDs under the standard's root name things, not data, and stay.

    The one rule for every place that must agree with the rewritten objects
    (the header walker here, DICOMweb request paths in the adaptation layer).
    """
    uid = uid.strip("\0 ")
    if not uid or uid.startswith(STANDARD_UID_PREFIX):
        return uid
    return keyed.keyed_uid(key, uid)


def uid_mapping(profile: ProfileOptions, key: bytes):
    """``uid -> replacement`` as the header walker applies it under ``profile``; ``None`` under Retain UIDs."""
    if profile.retain_uids:
        return None
    return lambda uid: replacement_uid(key, uid)


def _uid_syntax(elem: DataElement) -> bool:
    """Whether every value of a kept UI element is a UID: digits and dots, at most 64 characters.

    Why: structural UIDs (and every UID under Retain UIDs) are written out unchanged. A
    value with letters is no UID; the fuzzer spliced a private element's text into
    Referenced SOP Class UID, which would have carried it out verbatim.
    """
    return all(0 < len(uid := str(v).strip("\0 ")) <= 64 and _UID_CHARS.issuperset(uid)
               for v in _values(elem))


_UID_CHARS = frozenset("0123456789.")


@lru_cache(maxsize=4096)
def known_tag(tag: int) -> bool:
    """Whether the current data dictionary defines ``tag``; retired entries do not count.

    Why retired entries are refused (when the table does not list them): no
    current object may contain them, and their repeating groups are wide
    nets. The fuzzer flipped Patient's Name (0010,0010) to (1010,0010), which
    matches the retired Zonal Map group (1010,xxxx) as US 1-n, so in Implicit
    VR the name's bytes were read as numbers and written back unchanged.

    The delimitation group (FFFE,xxxx: Item, Item and Sequence Delimitation)
    is in the dictionary but is structure, never an attribute: an element with
    such a tag is a broken or crafted file (a fuzzed Icon Image Sequence tag
    turned into (FFFE,E000) carried the icon's pixels past the icon rule).
    """
    if tag >> 16 == 0xFFFE:
        return False
    try:
        entry = get_entry(tag)
    except KeyError:
        return False
    return entry[3] != "Retired"


def element_vr(tag: int) -> str:
    """Dictionary VR for ``tag`` (first choice for ambiguous VRs), or UN."""
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"
