"""Replacement values: dummies valid for each VR, shifted dates, cleaned text.

Why a fixed dummy per VR: a D action must leave a non-empty value a validator
accepts (PS3.5 VR rules: length, character repertoire), and the same dummy
every time keeps output deterministic. Dates are shifted by whole days so the
time of day, order and every interval (also across midnight) are preserved.
"""

from __future__ import annotations

import datetime
import re

#: non-empty values valid for each VR (D action); binary VRs get zero bytes
DUMMY_TEXT = {
    "AE": "ANONYMOUS", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": "ANONYMOUS", "LT": "ANONYMOUS", "PN": "ANONYMOUS^ANONYMOUS",
    "SH": "ANONYMOUS", "ST": "ANONYMOUS", "TM": "000000", "UC": "ANONYMOUS", "UT": "ANONYMOUS",
    "UR": "urn:anonymous",
}
NUMERIC_VRS = frozenset({"FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT"})
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
#: VRs whose value may hold free text or names (the ones the text cleaner looks at)
TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
DATE_VRS = frozenset({"DA", "DT", "TM"})
REMOVED_TEXT = "REMOVED"
#: a token of at least this many characters from the header is a deny-list entry
MIN_DENY_TOKEN = 3
_DATE_LIKE = re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b|\b(?:19|20)\d{6}\b")
#: runs of 5+ digits look like record numbers, phone numbers or dates
_LONG_NUMBER = re.compile(r"\d{5,}")


def dummy(vr: str):
    """A deterministic non-empty value valid for ``vr``."""
    if vr in DUMMY_TEXT:
        return DUMMY_TEXT[vr]
    if vr in NUMERIC_VRS:
        return 0
    if vr in BINARY_VRS:
        return b"\0\0"
    return "ANONYMOUS"


def shift_da(value: str, days: int) -> str:
    """Move a DA value back by ``days``; unparseable values become the dummy date."""
    text = value.strip()
    try:
        day = datetime.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return DUMMY_TEXT["DA"]
    if len(text) != 8 or not text.isdigit():
        return DUMMY_TEXT["DA"]
    return (day - datetime.timedelta(days=days)).strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str:
    """Move a DT value back by ``days``, keeping its time part and UTC offset as given."""
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return DUMMY_TEXT["DT"]
    return shift_da(text[:8], days) + text[8:]


class TextCleaner:
    """Clean (C) free text: remove every identity value the header itself holds.

    The deny-list is built from the original header (names, IDs, addresses,
    institutions, dates), so "Dr SMITH saw JOHN on 2019-06-12" loses SMITH,
    JOHN and the date while keeping the clinical words. Dates and long digit
    runs are removed even when they are not in the header.
    """

    def __init__(self, tokens: set[str]) -> None:
        words = sorted({t.upper() for t in tokens if len(t) >= MIN_DENY_TOKEN}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None

    def clean(self, value: str) -> str:
        text = _DATE_LIKE.sub(REMOVED_TEXT, value)
        text = _LONG_NUMBER.sub(REMOVED_TEXT, text)
        if self._pattern is not None:
            text = self._pattern.sub(REMOVED_TEXT, text)
        return text


def tokens_of(value: str) -> set[str]:
    """The whole value and its name/word parts (PN components split on ^ and spaces)."""
    text = value.strip()
    parts = {text} | set(re.split(r"[\^\s=,;]+", text))
    return {p for p in parts if p}
