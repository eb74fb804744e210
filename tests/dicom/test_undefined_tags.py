"""Undefined standard tags: removed, whatever they hold (fail closed).

Found by the fuzz campaign: one flipped tag bit moved Institution Name to
(0008,0880), which no edition of the standard defines and Table E.1-1 does not
list, so the value was kept.
"""

from __future__ import annotations

import copy

from pydicom import Dataset, Sequence

from tests.dicom.helpers import run
from tests.support.synthetic import make_ct, to_bytes

PLANT = "UNDEFINEDPHI55Q"


def _with(change, seed: int = 5) -> bytes:
    ds = copy.deepcopy(make_ct(seed).dataset)
    change(ds)
    return to_bytes(ds)


def test_undefined_standard_tag_is_removed_and_counted():
    data = _with(lambda ds: ds.add_new(0x00080880, "LO", PLANT))
    result, out = run(data)
    assert 0x00080880 not in out
    assert PLANT.encode() not in result.data
    assert result.report.cdr_findings["undefined-tag"] == 1


def test_undefined_tag_inside_a_sequence_is_removed():
    def change(ds):
        item = Dataset()
        item.add_new(0x20080080, "LO", PLANT)
        item.CodeValue = "T-D0050"
        ds.AnatomicRegionSequence = Sequence([item])
    result, out = run(_with(change))
    assert PLANT.encode() not in result.data
    assert out.AnatomicRegionSequence[0].CodeValue == "T-D0050"


def test_defined_untabled_tag_is_still_kept():
    """Only undefined tags go: a dictionary tag the table does not list (Rows) stays."""
    result, out = run(_with(lambda ds: None))
    assert out.Rows == 16 and result.report.cdr_findings["undefined-tag"] == 0


def test_a_name_moved_into_a_retired_repeating_group_is_removed_in_implicit_vr():
    """Found by the campaign: (0010,0010) flipped to (1010,0010), the retired Zonal Map group (US 1-n)."""
    import struct

    from tests.support.synthetic import to_bytes as encode

    name = (PLANT + "X").encode()  # even length: read as 8 US numbers in Implicit VR
    ds = copy.deepcopy(make_ct(6).dataset)
    ds.add_new(0x10100010, "US", list(struct.unpack(f"<{len(name) // 2}H", name)))
    data = encode(ds, transfer_syntax="implicit-le")
    assert PLANT.encode() in data
    result, out = run(data)
    assert 0x10100010 not in out and PLANT.encode() not in result.data


def test_retired_attribute_the_table_does_not_list_is_removed():
    # Image Dimensions (0028,0005) is retired; no current object may carry it
    result, out = run(_with(lambda ds: ds.add_new(0x00280005, "US", 2)))
    assert 0x00280005 not in out and result.report.cdr_findings["undefined-tag"] == 1
