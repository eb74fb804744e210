"""The parse stage's decoding (reader.decode_all) gives exactly pydicom's elements.

Why: plain UI values are decoded by icapdlp itself (pydicom's general
conversion costs several times the decoding on a header of 2000 references).
Each decoded element must be the one pydicom's ``iterall`` would have made:
same class, VR, value and value type, offsets and flags, at every depth, or
the checks, the profile and the writer would see a different dataset.
"""

from __future__ import annotations

import io
import struct

import pytest
from pydicom import config as pydicom_config
from pydicom.filereader import read_dataset
from pydicom.hooks import hooks, raw_element_value

from icapdlp.dicom import reader
from icapdlp.dicom.prescan import scan
from icapdlp.dicom.options import DicomLimits
from tests.support.synthetic import make_ct, make_large_sequences, make_multiframe


def _explicit(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"UN", b"SQ", b"OB"):
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _implicit(group: int, element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


#: UI values around the plain case: padding, empty, multi-valued, odd bytes, private, UN
EXPLICIT_EDGES = b"".join([
    _explicit(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0"),
    _explicit(0x0008, 0x0018, b"UI", b"1.2.3 "),  # space padded
    _explicit(0x0008, 0x1150, b"UI", b""),  # empty
    _explicit(0x0008, 0x1155, b"UI", b"1.2\\3.4\0"),  # two values
    _explicit(0x0008, 0x3010, b"UI", b"\0\0"),  # only padding
    _explicit(0x0009, 0x0010, b"LO", b"CREATOR "),
    _explicit(0x0009, 0x1001, b"UI", b"9.9\xe9\0"),  # private, a latin-1 byte
    _explicit(0x0020, 0x000D, b"UN", b"1.2.5\0"),  # UN on a UI tag
    _explicit(0x0020, 0x000E, b"UI", b" 1.2.6"),  # a leading space (UID drops it)
])
IMPLICIT_EDGES = b"".join([
    _implicit(0x0008, 0x0016, b"1.2.840.10008.5.1.4.1.1.2\0"),
    _implicit(0x0008, 0x0018, b"1.2.3\\4\0"),
    _implicit(0x0008, 0x1150, b""),
    _implicit(0x0010, 0x0020, b"ID12"),  # not UI
    _implicit(0x0020, 0x000D, b"1.2.5 "),
])


def _datasets():
    for name, obj in [("ct", make_ct(1)), ("multiframe", make_multiframe(2, frames=2, rows=8, columns=8)),
                      ("sequence", make_large_sequences(3, items=30))]:
        scanned = scan(obj.data, DicomLimits())
        yield name, bytes(scanned.dataset), scanned.implicit
    for ts in ("implicit-le", "explicit-be"):
        scanned = scan(make_ct(4, transfer_syntax=ts).data, DicomLimits())
        yield f"ct-{ts}", bytes(scanned.dataset), scanned.implicit
    yield "explicit-edges", EXPLICIT_EDGES, False
    yield "implicit-edges", IMPLICIT_EDGES, True


DATASETS = {name: (data, implicit) for name, data, implicit in _datasets()}


def _read(data: bytes, implicit: bool, little: bool = True):
    return read_dataset(io.BytesIO(data), implicit, little, bytelength=len(data))


def _pydicom_decoded(data, implicit, little=True):
    ds = _read(data, implicit, little)
    with reader._no_read_warnings():
        for _ in ds.iterall():
            pass
    return ds


def _ours(data, implicit, little=True):
    ds = _read(data, implicit, little)
    with reader._no_read_warnings():
        reader.decode_all(ds)
    return ds


def _describe(ds, depth=0):
    """Everything observable about each element, at every depth, in file order."""
    rows = []
    for tag in sorted(ds._dict):
        elem = ds._dict[tag]
        value = elem.value
        rows.append((depth, int(tag), type(elem).__name__, elem.VR, type(value).__name__,
                     [type(v).__name__ for v in value] if type(value).__name__ == "MultiValue" else None,
                     None if elem.VR == "SQ" else value, elem.file_tell, elem.is_undefined_length,
                     elem.private_creator, elem.validation_mode))
        if elem.VR == "SQ":
            for item in value:
                rows.extend(_describe(item, depth + 1))
    return rows


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_decoded_elements_are_pydicoms(name):
    data, implicit = DATASETS[name]
    little = not name.endswith("explicit-be")
    expected = _describe(_pydicom_decoded(data, implicit, little))
    assert _describe(_ours(data, implicit, little)) == expected
    assert all(row[2] == "DataElement" for row in expected)  # nothing left raw


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # the invalid value is the point of the test
def test_plain_ui_is_decoded_here_and_the_rest_by_pydicom():
    ds = _read(EXPLICIT_EDGES, False)
    plain = {int(tag) for tag, raw in ds._dict.items() if reader._plain_ui(raw) is not None}
    assert plain == {0x00080016, 0x00080018, 0x00083010, 0x0020000E}


def test_installed_pydicom_hook_is_honoured(monkeypatch):
    """A conversion hook installed by a caller applies to UI values too: then pydicom decodes them all."""
    def upper(raw, data, **kwargs):
        raw_element_value(raw, data, **kwargs)
        if data["VR"] == "UI" and isinstance(data["value"], str):
            data["value"] = data["value"] + ".9"

    monkeypatch.setattr(hooks, "raw_element_value", upper)
    ds = _ours(EXPLICIT_EDGES, False)
    assert ds[0x00080018].value == "1.2.3.9"
    monkeypatch.setattr(pydicom_config, "data_element_callback", None)
