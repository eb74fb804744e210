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
    assert result.report.cdr_findings["other"] == 1


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
    assert out.Rows == 16 and result.report.cdr_findings["other"] == 0
