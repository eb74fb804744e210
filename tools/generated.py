"""Write a generated module, or check that the committed one is current (``--check`` in CI).

Shared by the generators in this folder so that every generated table is
checked the same way: a missing or stale module fails the build with the
command that regenerates it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_or_check(target: Path, text: str, *, check: bool, script: str, source: str) -> int:
    """Exit status: 0 written or current, 1 stale (``check``); ``source`` names what it was made from."""
    if check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{shown(target)} is stale: run {script}", file=sys.stderr)
            return 1
        print(f"{shown(target)} is up to date ({source})")
        return 0
    target.write_text(text)
    print(f"wrote {shown(target)} ({source})")
    return 0
