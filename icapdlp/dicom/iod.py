"""Compound actions (X/Z, X/D, Z/D, X/Z/D) decided by the object's IOD.

PS3.15 E.1.1 reads a compound code as "the first action unless the IOD needs
more". Which it needs depends on the attribute's Type in the IOD of the
object at hand, at the attribute's sequence path (generated into
``iod_types`` from PS3.3's module tables by tools/gen_iod_types.py):

- Type 1 -> D: a non-empty dummy (the value must be present);
- Type 2 -> Z: empty (a sequence with no items);
- Type 3 or absent from the IOD -> X: removed. An empty Type 3 sequence is an
  error ("one or more Items shall be included"), and removing keeps nothing.

A SOP Class the table does not know (private or newer than the table) gets
the most demanding Type the path has in ANY IOD: the object stays valid if
its IOD resembles any known one, and nothing is kept either way.
"""

from __future__ import annotations

from icapdlp.dicom import iod_types

COMPOUND_CODES = frozenset({"X/Z", "X/D", "Z/D", "X/Z/D"})
_ACTION_BY_TYPE = {1: "D", 2: "Z"}


def types_for(sop_class: str) -> dict[tuple[int, ...], int]:
    """Path -> Type (1 or 2) for the IOD of ``sop_class``; the every-IOD table if unknown."""
    return iod_types.TABLES[iod_types.SOP_CLASS_TABLE.get(sop_class, iod_types.ANY_IOD_TABLE)]


def decide(types: dict[tuple[int, ...], int], path: tuple[int, ...]) -> str:
    """The concrete action (D, Z or X) for a compound-action attribute at ``path``."""
    return _ACTION_BY_TYPE.get(types.get(path, 3), "X")
