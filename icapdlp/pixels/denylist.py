"""Words that must not survive in the pixels because the header says they are this patient's.

The NER model misses "SMITH^JOHN" and "Boston General Hospital"; the file's own
header does not. Before the header is de-identified we collect its names,
identifiers, dates (in the renderings devices print), institution and station
values, from nested sequences too, and match OCR words against them
tolerantly: case and punctuation are ignored and a few OCR character errors are
allowed, more for longer tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

#: header attributes (outside PN, which are all taken) whose values are identifiers
ID_KEYWORDS = frozenset({"PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "IssuerOfPatientID",
                         "MedicalRecordLocator", "AdmissionID", "RequestedProcedureID", "PerformedProcedureStepID",
                         "ScheduledProcedureStepID", "FillerOrderNumberImagingServiceRequest",
                         "PlacerOrderNumberImagingServiceRequest", "DeviceSerialNumber"})
#: attributes whose words identify a place or device
PLACE_KEYWORDS = frozenset({"InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
                            "PatientAddress", "RegionOfResidence", "CountryOfResidence", "PatientTelephoneNumbers"})
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: tokens shorter than this are ignored (initials, "1" as Study ID): too many false hits
MIN_TOKEN = 3
#: words too common in place names to mean anything on their own
STOP_WORDS = frozenset({"THE", "AND", "OF", "FOR", "DE", "LA", "ST"})

_NON_ALNUM = re.compile(r"[^0-9A-Z]+")
_SPLIT = re.compile(r"[\s^=,;/\\.\-_()]+")


def normalize(text: str) -> str:
    """Upper-case letters and digits only: what OCR reliably preserves of a word."""
    return _NON_ALNUM.sub("", text.upper())


def allowed_errors(length: int) -> int:
    """OCR character errors tolerated for a token of this length (0, 1 or 2)."""
    if length < 5:
        return 0
    return 1 if length < 9 else 2


def _date_renderings(da: str) -> list[str]:
    """YYYYMMDD, YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY, DD.MM.YYYY, DD-Mon-YYYY, normalised."""
    if len(da) < 8 or not da[:8].isdigit():
        return []
    y, m, d = da[:4], da[4:6], da[6:8]
    out = [y + m + d, d + m + y, m + d + y]
    if 1 <= int(m) <= 12:
        out.append(d + MONTHS[int(m) - 1] + y)
    return out


@dataclass(frozen=True)
class DenyList:
    """Normalised tokens from the header, each with the closed-set group it came from."""

    tokens: dict[str, str]

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def match(self, word: str) -> str | None:
        """The group of the header token ``word`` matches, or None.

        A word matches when it equals a token, contains it (OCR glued "SMITH^JOHN"
        into one word) or is a long enough piece of it ("ringfield"), each up to
        :func:`allowed_errors` edits.
        """
        w = normalize(word)
        if len(w) < MIN_TOKEN:
            return None
        for token, group in self.tokens.items():
            if w == token:
                return group
        for token, group in self.tokens.items():
            k = allowed_errors(len(token))
            if len(token) >= 5 and abs(len(w) - len(token)) <= k and _edit_distance(w, token) <= k:
                return group
            if len(token) >= 4 and len(w) > len(token) and _substring_distance(token, w) <= k:
                return group
            if len(w) >= 5 and len(w) < len(token) and _substring_distance(w, token) <= allowed_errors(len(w)) // 2:
                return group
        return None

    def joined_distance(self, words: list[str]) -> tuple[str, int] | None:
        """(group, edits) of the closest whole token the joined ``words`` match, or None."""
        w = normalize("".join(words))
        best: tuple[str, int] | None = None
        for token, group in self.tokens.items():
            k = allowed_errors(len(token))
            if len(token) >= 5 and abs(len(w) - len(token)) <= k:
                d = _edit_distance(w, token)
                if d <= k and (best is None or d < best[1]):
                    best = (group, d)
        return best


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _substring_distance(needle: str, haystack: str) -> int:
    """Fewest edits turning ``needle`` into some substring of ``haystack`` (Sellers)."""
    prev = [0] * (len(haystack) + 1)
    for i, cn in enumerate(needle, 1):
        cur = [i]
        for j, ch in enumerate(haystack, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (cn != ch)))
        prev = cur
    return min(prev)


def _add_words(tokens: dict[str, str], value: str, group: str) -> None:
    for part in _SPLIT.split(value):
        n = normalize(part)
        if len(n) >= MIN_TOKEN and n not in STOP_WORDS:
            tokens.setdefault(n, group)


def _add_person_name(tokens: dict[str, str], value: str) -> None:
    # family^given^middle^prefix^suffix, per ideographic group: prefixes/suffixes
    # ("DR", "MD") are titles, not identity, and would erase labels like "DR"
    for group in str(value).split("="):
        comps = group.split("^")
        for comp in comps[:3]:
            _add_words(tokens, comp, "person-name")
        if len(comps) >= 2:  # glued renderings "SMITHJOHN" / "JOHNSMITH"
            family, given = normalize(comps[0]), normalize(comps[1])
            if family and given:
                tokens.setdefault(family + given, "person-name")
                tokens.setdefault(given + family, "person-name")


def build_deny_list(ds: Dataset) -> DenyList:
    """Collect deny tokens from every level of ``ds`` (sequences included)."""
    tokens: dict[str, str] = {}
    for elem in ds.iterall():
        if elem.value is None or elem.value == "":
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        if elem.VR == "PN":
            for v in values:
                _add_person_name(tokens, str(v))
        elif elem.VR == "DA" or (elem.VR == "DT"):
            for v in values:
                for r in _date_renderings(str(v)):
                    tokens.setdefault(r, "date")
        elif elem.keyword in ID_KEYWORDS:
            for v in values:
                n = normalize(str(v))
                if len(n) >= MIN_TOKEN:
                    tokens.setdefault(n, "identifier")
        elif elem.keyword in PLACE_KEYWORDS:
            for v in values:
                _add_words(tokens, str(v), "institution")
    return DenyList(tokens)
