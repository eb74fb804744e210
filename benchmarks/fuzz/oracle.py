"""The campaign's PHI oracle: which surviving planted strings are findings, and which are not.

A planted string found in the output of the pipeline or payload target is a
``phi-survived`` finding, except in three shapes where no header rule of a
de-identifier could have removed it, each counted in its own column so every
run shows how often it happens:

- ``plain-form-field``: the string sits only in a plain field of
  ``multipart/form-data`` (no filename, no Content-Type) that the product did
  not recognise as DICOM and passed byte-identical, as README "Payloads"
  promises. A mutation copied DICOM element bytes into the field's text.
- ``relabelled``: every element that still holds the string carries a tag the
  string was never planted under, and that tag is a current dictionary
  attribute the profile keeps (Table E.1-1 does not list it and no project rule
  covers it: Manufacturer, Radiopharmaceutical Route...). A flipped tag bit
  turned, say, Operators' Name (0008,1070) into Radiopharmaceutical Route
  (0018,1070): the input is then a well-formed object whose descriptive
  attribute holds that text, exactly as if a user had typed it there. PS3.15
  keeps such attributes; telling the two apart would need the original tag.

- ``pixel-data``: the string sits only in the top-level Pixel Data of the output
  while the fuzzing profile does not clean pixels (``clean_pixel_data`` is off:
  OCR per case would cost seconds). A "dup" lifted the Icon Image Sequence's
  items to the top level, where the parser then reads a valid 4x4 image whose
  pixel bytes are the icon's; the rest of the object is trailing data and
  dropped. Pixel values are the pixel cleaner's job, not the header profile's.

Everything else stays a finding: a string under the tag it was planted under
(a rule that fails to act, like the Universal Entity ID lifted to the top level
by a "dup"), under a tag the table or a project rule lists, in raw bytes no
parser can attribute, in a file part, a STOW-RS part or an archive member.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile
from functools import lru_cache

from icapdlp.verdict import Blocked
from tests.fuzz import seeds


def dicom_objects(body: bytes) -> list[bytes]:
    """The DICOM objects inside ``body``: itself, or the members/parts of a wrapper."""
    if body[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                return [archive.read(n) for n in archive.namelist()]
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
            return [body]
    if body[:2] == b"\x1f\x8b":
        try:
            return [gzip.decompress(body)]
        except (OSError, EOFError):
            return [body]
    found, start = [], 0
    while (at := body.find(b"DICM", start)) >= 0:
        found.append(body[max(at - 128, 0):])
        start = at + 4
    return found or [body]


def holders(data: bytes, planted: bytes) -> list[tuple[int, str, str]] | None:
    """(tag, VR, path) of every element whose value holds ``planted``; None if pydicom cannot read it."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            found: list[tuple[int, str, str]] = []
            _search(ds, planted.decode(), "", found)
            if getattr(ds, "file_meta", None) is not None:
                _search(ds.file_meta, planted.decode(), "meta ", found)
    except Exception:  # noqa: BLE001 - whatever pydicom cannot read, no element can be blamed
        return None
    return found


def _search(ds, needle: str, where: str, found: list[tuple[int, str, str]]) -> None:
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or ()):
                _search(item, needle, f"{where}{tag}[{i}] ", found)
            continue
        value = elem.value
        text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
        if needle in text:
            found.append((int(elem.tag), elem.VR, where.strip() or "top level"))


@lru_cache(maxsize=1)
def planted_tags() -> dict[bytes, frozenset[int]]:
    """Planted string -> the tags it was planted under in the DICOM seeds."""
    tags: dict[bytes, set[int]] = {}
    for (_name, data), planted in zip(seeds.dicom_seeds(), seeds.dicom_planted().values()):
        for p in planted:
            for tag, _vr, _path in holders(data, p.encode()) or ():
                tags.setdefault(p.encode(), set()).add(tag)
    return {p: frozenset(t) for p, t in tags.items()}


def _every_holder(body: bytes, objects: list[bytes], planted: bytes) -> list | None:
    """Every element holding ``planted`` in the output's DICOM objects, or None when some copy
    sits in bytes no element accounts for (or an object cannot be read back)."""
    found = []
    for obj in objects:
        if planted in obj:
            held = holders(obj, planted)
            if held is None:
                return None
            found += held
    if not found or body.count(planted) > len(found):
        return None
    return found


def only_relabelled(body: bytes, survived: list[bytes]) -> bool:
    """Whether every surviving string sits only in kept attributes it was never planted under."""
    from icapdlp.dicom.deid import known_tag
    from icapdlp.dicom.profile import action_table
    from tests.fuzz.targets import pipeline_config

    table = action_table(pipeline_config().profile)
    objects = dicom_objects(body)
    for planted in survived:
        found = _every_holder(body, objects, planted)
        if found is None:
            return False
        original = planted_tags().get(planted, frozenset())
        for tag, vr, _path in found:
            group = tag >> 16
            if tag in original or group % 2 or not known_tag(tag) or table.action(tag) is not None:
                return False
            if vr == "UI":
                return False  # a planted string is never a valid UID: a kept UI holding one is a defect
    return True


PIXEL_DATA = 0x7FE00010


def only_in_pixel_data(body: bytes, survived: list[bytes]) -> bool:
    """Whether every surviving string sits only in top-level Pixel Data that the profile leaves alone."""
    from tests.fuzz.targets import pipeline_config

    if pipeline_config().profile.clean_pixel_data:
        return False
    objects = dicom_objects(body)
    for planted in survived:
        found = _every_holder(body, objects, planted)
        if found is None:
            return False
        if any(tag != PIXEL_DATA or path != "top level" for tag, _vr, path in found):
            return False
    return True


def only_in_plain_form_fields(index: int, data: bytes, body: bytes, survived: list[bytes]) -> bool:
    """Whether every surviving planted string sits only in plain form fields passed byte-identical.

    Only that exact shape is set apart; a file part, a STOW-RS part or any other wrapping that
    lets a planted string through stays a phi-survived finding.
    """
    from icapdlp.payload.media import parse_media_type
    from icapdlp.payload.multipart import parse_multipart

    media = parse_media_type(seeds.payload_seeds()[index][1])
    if media.essence != "multipart/form-data":
        return False
    try:
        before = parse_multipart(data, media.param("boundary") or "", 1000)
        after = parse_multipart(body, media.param("boundary") or "", 1000)
    except Blocked:
        return False
    passed = {part.content for part in before.parts
              if part.filename is None and part.header("Content-Type") is None}
    for planted in survived:
        held = [part for part in after.parts if planted in part.header_block + part.content]
        if not held or body.count(planted) != sum(p.content.count(planted) for p in held):
            return False
        if any(p.filename is not None or p.header("Content-Type") is not None or p.content not in passed
               for p in held):
            return False
    return True


def classify(target: str, index: int, data: bytes, body: bytes, survived: list[bytes]) -> str:
    """``plain-form-field``, ``relabelled``, ``pixel-data`` or ``phi-survived`` for a case whose output
    holds ``survived``."""
    if target == "payload" and only_in_plain_form_fields(index, data, body, survived):
        return "plain-form-field"
    if only_relabelled(body, survived):
        return "relabelled"
    if only_in_pixel_data(body, survived):
        return "pixel-data"
    return "phi-survived"
