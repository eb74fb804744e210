"""Action semantics for the generated PS3.15 table: which action a tag gets under a profile.

The table (``ps315_table``) is data; this module is the policy on top of it:

- an option column applies when its option is on in :class:`ProfileOptions`;
- when several active options name a row, the least retaining action wins
  (C beats K: e.g. Calibration Date under Retain Device Identity *and*
  Modified Dates is shifted, not kept);
- compound codes X/Z, X/D, Z/D and X/Z/D stay compound here: the walker
  decides them per object by the attribute's Type in the object's IOD
  (``icapdlp.dicom.iod``; see ACTIONS.md); X/Z/U* -> U* (keep the sequence,
  replace every instance UID inside);
- when options compete, a compound code ranks as D (as Z for X/Z).

Table E.1-1 does not list every attribute that can identify someone. Three
project rules (ACTIONS.md, "Project rules for identifying attributes") cover the
gap; the table's own row always wins over them:

- ``PROJECT_ROWS``: a short reviewed list of identifier-bearing attributes
  (HL7 v2 hierarchic designators and the issuer sequences that carry them,
  contact details, instance and device identifiers, SR and presentation text
  values), each with the action the table gives its closest listed relative
  and the reason;
- every standard attribute of VR PN that the table does not list is D: a
  person's name identifies whatever attribute holds it;
- every standard free-text attribute (LO, LT, ST, UT, UC) the table does not
  list and whose keyword says it is a comment, note or reason is X, C under
  Clean Descriptors: how the table treats 20 of its own 28 comment, note and
  reason rows (the rest are Z or D where the attribute can be required).

Other standard attributes the table does not list are kept (Manufacturer,
Convolution Kernel, Code Meaning, coil names, segment labels...): radiology
users need them, and the table's authors chose to keep them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydicom.datadict import DicomDictionary

from icapdlp.dicom import ps315_table
from icapdlp.dicom.options import ProfileOptions

#: the rank of each compound code when active options compete (its concrete action is decided
#: per object by icapdlp.dicom.iod); X/Z/U* is always U*
COMPOUND = {"Z/D": "D", "X/D": "D", "X/Z/D": "D", "X/Z": "Z", "X/Z/U*": "U*"}
#: least retaining first; used to settle rows named by several active options
_STRENGTH = {"X": 0, "Z": 1, "D": 2, "U": 3, "U*": 3, "C": 4, "K": 5}

#: Table E.1-1 code for each option, in PS3.15 E.3 order (CID 7050)
OPTION_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_pixel_data": ("113101", "Clean Pixel Data Option"),
    "clean_recognizable_visual_features": ("113102", "Clean Recognizable Visual Features Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "dates_full": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "dates_modified": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}


def active_columns(profile: ProfileOptions) -> frozenset[str]:
    """The option columns of Table E.1-1 that ``profile`` switches on."""
    on = {
        "cleanGraphOpt": profile.clean_graphics,
        "cleanStructContOpt": profile.clean_structured_content,
        "cleanDescOpt": profile.clean_descriptors,
        "rtnLongFullDatesOpt": profile.longitudinal_dates == "full",
        "rtnLongModifDatesOpt": profile.longitudinal_dates == "modified",
        "rtnPatCharsOpt": profile.retain_patient_characteristics,
        "rtnDevIdOpt": profile.retain_device_identity,
        "rtnUIDsOpt": profile.retain_uids,
        "rtnSafePrivOpt": profile.retain_safe_private,
        "rtnInstIdOpt": profile.retain_institution_identity,
    }
    return frozenset(col for col, enabled in on.items() if enabled)


def applied_option_keys(profile: ProfileOptions, *, pixels_cleaned: bool) -> list[str]:
    """OPTION_CODES keys for what was actually applied (only claim what was done)."""
    keys = ["basic"]
    if pixels_cleaned:
        keys.append("clean_pixel_data")
    for name in ("clean_graphics", "clean_structured_content", "clean_descriptors"):
        if getattr(profile, name):
            keys.append(name)
    if profile.longitudinal_dates == "full":
        keys.append("dates_full")
    elif profile.longitudinal_dates == "modified":
        keys.append("dates_modified")
    for name in ("retain_patient_characteristics", "retain_device_identity", "retain_uids",
                 "retain_safe_private", "retain_institution_identity"):
        if getattr(profile, name):
            keys.append(name)
    return keys


def resolve(basic: str, options: tuple[tuple[str, str], ...], active: frozenset[str]) -> str:
    """The action for one row under the active options: D, Z, X, K, C, U, U*, or a compound
    code (X/Z, X/D, Z/D, X/Z/D) that :mod:`icapdlp.dicom.iod` decides per object."""
    chosen = [action for column, action in options if column in active]
    code = min(chosen, key=lambda a: _STRENGTH[COMPOUND.get(a, a)]) if chosen else basic
    return "U*" if code == "X/Z/U*" else code


@dataclass(frozen=True)
class ProjectRow:
    """One project rule for an attribute Table E.1-1 does not list, in the table's own terms."""

    tag: int
    name: str
    basic: str
    options: tuple[tuple[str, str], ...]
    #: why the attribute is not kept as the table's default for unlisted attributes would
    reason: str
    #: the Standard defines it only inside sequence items; at the top level it is a misplaced
    #: element (a broken sequence or a crafted file), removed and counted as a CDR finding
    sequence_only: bool = False


_ISSUER = ("names the authority that issued an identifier (in practice the hospital or its "
           "system); the table removes every issuer it lists (Issuer of Patient ID, Issuer of "
           "Admission ID Sequence, the clinical-trial issuers), with no option that keeps them")
_HD_MACRO = "HL7 v2 Hierarchic Designator macro (PS3.3 10-17): " + _ISSUER
_DATE = ("a date or date-time of an event about the patient, the object or its inventory; the table "
         "gives such dates X/D (Instance Creation Date), K under Full Dates, C under Modified Dates")
_DATE_OPTIONS = (("rtnLongFullDatesOpt", "K"), ("rtnLongModifDatesOpt", "C"))
_ADDRESS = ("a network address (URL, URI, file name) that carries host names and the original Study, "
            "Series or Instance UIDs, which the table replaces; X/D: removed, a dummy URN where the IOD "
            "requires a value (Pixel Data Provider URL in JPIP objects). Coding Scheme URL and URN Code "
            "Value name public code systems and are kept")

#: reviewed project rules, one reason each (ACTIONS.md repeats them for readers of the policy)
PROJECT_ROWS = (
    ProjectRow(0x00080051, "Issuer of Accession Number Sequence", "X", (), _ISSUER),
    ProjectRow(0x00100024, "Issuer of Patient ID Qualifiers Sequence", "X", (), _ISSUER),
    ProjectRow(0x00400026, "Order Placer Identifier Sequence", "X", (), _ISSUER),
    ProjectRow(0x00400027, "Order Filler Identifier Sequence", "X", (), _ISSUER),
    ProjectRow(0x00400031, "Local Namespace Entity ID", "X", (), _HD_MACRO, sequence_only=True),
    ProjectRow(0x00400032, "Universal Entity ID", "X", (), _HD_MACRO, sequence_only=True),
    ProjectRow(0x00400033, "Universal Entity ID Type", "X", (),
               "says how to read a Universal Entity ID, which is removed; one flipped bit of "
               "(0040,0032) lands here and a 16-character identifier is a valid CS", sequence_only=True),
    ProjectRow(0x00400036, "Assigning Facility Sequence", "X", (), _HD_MACRO, sequence_only=True),
    ProjectRow(0x00400039, "Assigning Jurisdiction Code Sequence", "X", (),
               "the state or country that issued a patient identifier: a place, removed like "
               "Country of Residence and Region of Residence", sequence_only=True),
    ProjectRow(0x0040003A, "Assigning Agency or Department Code Sequence", "X", (), _ISSUER,
               sequence_only=True),
    ProjectRow(0x0040E001, "HL7 Instance Identifier", "X", (("rtnUIDsOpt", "K"),),
               "identifies one HL7 CDA document about the patient in the hospital's repository, "
               "as an instance UID does; kept only under Retain UIDs", sequence_only=True),
    ProjectRow(0x0074100A, "Contact URI", "X", (),
               "telephone, e-mail or web address of a person; the table removes Person Telephone "
               "Numbers and Person Address", sequence_only=True),
    ProjectRow(0x0074100C, "Contact Display Name", "X", (),
               "a person's name held as LO; the table removes or replaces every name it lists",
               sequence_only=True),
    ProjectRow(0x00181003, "Device ID", "X", (("rtnDevIdOpt", "K"),),
               "a site-assigned device identifier (asset tag), like Device Serial Number: X, kept "
               "under Retain Device Identity", sequence_only=True),
    ProjectRow(0x00181010, "Secondary Capture Device ID", "X", (("rtnDevIdOpt", "K"),),
               "names the capturing workstation, like Station Name: kept under Retain Device Identity"),
    ProjectRow(0x00181803, "NTP Source Address", "X", (("rtnDevIdOpt", "K"),),
               "host name or IP address inside the site's network, like Network ID"),
    ProjectRow(0x0040A160, "Text Value", "D", (("cleanStructContOpt", "C"),),
               "free text of an SR content item; the table handles it through Content Sequence "
               "(D, C under Clean Structured Content), so the value gets the same action wherever "
               "it is found (a broken sequence can lift it to the top level)", sequence_only=True),
    ProjectRow(0x00700006, "Unformatted Text Value", "D", (("cleanGraphOpt", "C"),),
               "text annotation drawn on an image; the table handles it through Graphic "
               "Annotation Sequence (D, C under Clean Graphics), so the value gets the same action "
               "wherever it is found", sequence_only=True),
    *(ProjectRow(tag, name, "X/D", _DATE_OPTIONS, _DATE) for tag, name in (
        (0x00080404, "Item Inventory DateTime"), (0x00080416, "Expiration DateTime"),
        (0x0008041F, "Study Update DateTime"), (0x00140102, "Secondary Review Date"),
        (0x00141020, "Expiry Date"), (0x00143076, "Date of Gain Calibration"),
        (0x00144076, "Procedure Creation Date"), (0x00144078, "Procedure Expiration Date"),
        (0x0014407A, "Procedure Last Modified Date"), (0x40101025, "Route Segment Start Time"),
        (0x40101026, "Route Segment End Time"), (0x4010102B, "Alarm Decision Time"),
        (0x40101041, "OOI Owner Creation Time"))),
    *(ProjectRow(tag, name, "X/D", (), _ADDRESS) for tag, name in (
        (0x00080407, "Stored Instance Base URI"), (0x00080408, "Folder Access URI"),
        (0x00080409, "File Access URI"), (0x0008040B, "Filename in Container"),
        (0x00081190, "Retrieve URL"), (0x00287FE0, "Pixel Data Provider URL"),
        (0x00404073, "Storage URL"), (0x0040E010, "Retrieve URI"),
        (0x00687005, "Relative URI Reference Within Encapsulated Document"))),
    ProjectRow(0x00100033, "Patient's Birth Date in Alternative Calendar", "X", (),
               "the patient's birth date in another calendar: the table empties Patient's Birth Date "
               "and removes Patient's Birth Time with no option that keeps them, and free text cannot "
               "be shifted"),
    ProjectRow(0x00100034, "Patient's Death Date in Alternative Calendar", "X", (),
               "the patient's death date in another calendar, free text that cannot be shifted"),
    ProjectRow(0x00880130, "Storage Media File-set ID", "X", (),
               "the label of the medium the object came on, often the patient's name or ID; the table "
               "replaces Storage Media File-set UID"),
    ProjectRow(0x21000160, "Owner ID", "X", (), "identifies the person who owns a print job"),
    ProjectRow(0x21100030, "Printer Name", "X", (("rtnDevIdOpt", "K"),),
               "a site's device name, like Station Name: kept under Retain Device Identity"),
    ProjectRow(0x01000426, "Authorization Equipment Certification Number", "X", (("rtnDevIdOpt", "K"),),
               "a site's device identifier, like Device Serial Number"),
    ProjectRow(0x30020020, "Radiation Machine Name", "X/Z", (("rtnDevIdOpt", "K"),),
               "a site's treatment machine name: the table gives Treatment Machine Name X/Z, K under "
               "Retain Device Identity"),
    ProjectRow(0x00720008, "Hanging Protocol Creator", "X/D", (),
               "the person or institution that made the hanging protocol, as Content Creator's Name is"),
    ProjectRow(0x00720010, "Hanging Protocol User Group Name", "X/D", (),
               "names a group of users at a site (an institution or department)"),
    *(ProjectRow(tag, name, "X", (), "where the person screened (DICOS) travelled: a place, removed like "
                 "Region of Residence") for tag, name in (
        (0x40101007, "Route Segment ID"), (0x4010101E, "Route Segment Start Location ID"),
        (0x4010101F, "Route Segment End Location ID"), (0x4010102A, "Assigned Location"),
        (0x40101054, "Route ID"), (0x40101055, "Route ID Assigning Authority"),
        (0x40101058, "Carrier ID"), (0x40101078, "PTO Location Description"))),
    ProjectRow(0x4010101A, "Boarding Pass ID", "X", (),
               "identifies the person screened (DICOS), as Patient ID does"),
    ProjectRow(0x40101051, "Itinerary ID", "X", (), "identifies the person screened (DICOS) and their travel"),
    ProjectRow(0x40101053, "Itinerary ID Assigning Authority", "X", (), _ISSUER),
)
#: free-text VRs the table's own comment, note and reason rows use
NARRATIVE_VRS = frozenset({"LO", "LT", "ST", "UT", "UC"})
_NARRATIVE_KEYWORD = re.compile(r"Comment|Notes|Reason")
#: the action for unlisted person names and narratives (basic, option columns)
PERSON_NAME_ACTION = ("D", ())
NARRATIVE_ACTION = ("X", (("cleanDescOpt", "C"),))


def _current_unlisted(vrs: frozenset[str], keyword: re.Pattern[str] | None = None) -> tuple[int, ...]:
    """Current (not retired) dictionary tags of ``vrs`` that Table E.1-1 does not list."""
    listed = {value for value, *_ in ps315_table.ROWS}
    return tuple(sorted(
        tag for tag, (vr, _vm, _name, retired, kw) in DicomDictionary.items()
        if vr in vrs and retired != "Retired" and tag not in listed and tag >> 16 not in (0x0000, 0x0002)
        and (keyword is None or keyword.search(kw))))


#: generated from the data dictionary; tests/dicom/test_profile_unlisted.py pins both lists, so a
#: pydicom upgrade that adds entries fails until someone reviews them
UNLISTED_PERSON_NAMES = _current_unlisted(frozenset({"PN"}))
UNLISTED_NARRATIVES = _current_unlisted(NARRATIVE_VRS, _NARRATIVE_KEYWORD)
#: project-rule attributes that are never valid at the top level of a dataset
SEQUENCE_ONLY_TAGS = frozenset(row.tag for row in PROJECT_ROWS if row.sequence_only)


def project_rules() -> dict[int, tuple[str, tuple[tuple[str, str], ...]]]:
    """Tag -> (basic, options) for every project rule; Table E.1-1 rows are never overridden."""
    rules = {tag: PERSON_NAME_ACTION for tag in UNLISTED_PERSON_NAMES}
    rules.update({tag: NARRATIVE_ACTION for tag in UNLISTED_NARRATIVES})
    rules.update({row.tag: (row.basic, row.options) for row in PROJECT_ROWS})
    listed = {value for value, *_ in ps315_table.ROWS}
    return {tag: rule for tag, rule in rules.items() if tag not in listed}


class ActionTable:
    """Tag -> concrete action for one profile; built once per profile and cached."""

    def __init__(self, profile: ProfileOptions) -> None:
        active = active_columns(profile)
        self.exact = {tag: resolve(basic, opts, active) for tag, (basic, opts) in project_rules().items()}
        self.exact.update({value: resolve(basic, opts, active)
                           for value, _mask, _name, basic, opts in ps315_table.ROWS})
        self.patterns = tuple((value, mask, resolve(basic, opts, active))
                              for value, mask, _name, basic, opts in ps315_table.PATTERN_ROWS)
        _name, basic, opts = ps315_table.PRIVATE_ROW
        self.private = resolve(basic, opts, active)

    def action(self, tag: int) -> str | None:
        """The row action for a public tag, or None when the table does not list it."""
        found = self.exact.get(tag)
        if found is not None:
            return found
        for value, mask, action in self.patterns:
            if tag & mask == value:
                return action
        return None


@lru_cache(maxsize=64)
def action_table(profile: ProfileOptions) -> ActionTable:
    return ActionTable(profile)


def _structural_uid_tags() -> frozenset[int]:
    """UI attributes that name a class, syntax, scheme or template, never an instance.

    These are never replaced: changing them would make the object unreadable
    (SOP Class, Transfer Syntax) or break coded content (coding scheme,
    context group, template, mapping resource UIDs).
    """
    markers = ("ClassUID", "TransferSyntaxUID", "CodingSchemeUID", "ContextGroup", "TemplateUID",
               "TemplateExtension", "MappingResourceUID", "ContextUID", "ApplicationContextName")
    tags = {tag for tag, entry in DicomDictionary.items()
            if entry[0] == "UI" and any(m in entry[4] for m in markers)}
    return frozenset(tags)


STRUCTURAL_UID_TAGS = _structural_uid_tags()
#: UIDs under the DICOM root are defined by the standard (classes, frames like Talairach)
STANDARD_UID_PREFIX = "1.2.840.10008."
