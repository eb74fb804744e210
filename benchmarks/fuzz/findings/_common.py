"""Shared by the reproducers: the repository on sys.path and a verdict printer."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))


def verdict(reproduced: bool, what: str) -> int:
    print(("REPRODUCED: " if reproduced else "fixed: ") + what)
    return 1 if reproduced else 0
