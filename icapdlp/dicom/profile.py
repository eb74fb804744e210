"""Action semantics for the generated PS3.15 table: which action a tag gets under a profile.

The table (``ps315_table``) is data; this module is the policy on top of it:

- an option column applies when its option is on in :class:`ProfileOptions`;
- when several active options name a row, the least retaining action wins
  (C beats K: e.g. Calibration Date under Retain Device Identity *and*
  Modified Dates is shifted, not kept);
- compound codes resolve to the value-removing form that is valid whatever
  the attribute's Type is in the IOD at hand (see ACTIONS.md):
  Z/D, X/D, X/Z/D -> D; X/Z -> Z; X/Z/U* -> U* (keep the sequence, replace
  every instance UID inside).
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.datadict import DicomDictionary

from icapdlp.dicom import ps315_table
from icapdlp.dicom.options import ProfileOptions

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
    """The concrete action (D, Z, X, K, C, U or U*) for one row under the active options."""
    chosen = [action for column, action in options if column in active]
    code = min(chosen, key=lambda a: _STRENGTH[COMPOUND.get(a, a)]) if chosen else basic
    return COMPOUND.get(code, code)


class ActionTable:
    """Tag -> concrete action for one profile; built once per profile and cached."""

    def __init__(self, profile: ProfileOptions) -> None:
        active = active_columns(profile)
        self.exact = {value: resolve(basic, opts, active)
                      for value, _mask, _name, basic, opts in ps315_table.ROWS}
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
