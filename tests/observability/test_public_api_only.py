"""Observability uses prometheus-client through its public API only.

Issue 15: the request tallies wrote ``Histogram._buckets`` and ``_sum``
directly; a client upgrade that renames a private field would have broken
every scrape, or silently exported wrong numbers. They are a custom collector
now. This test reads the package's source and fails on any access to a
private attribute (``x._name``) of anything but the object's own ``self``
(or its class), which is where a private field of a metric would be touched.
"""

from __future__ import annotations

import ast
from pathlib import Path

import icapdlp.observability

PACKAGE = Path(icapdlp.observability.__file__).parent


def _private_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        found.append(f"{path.name}:{node.lineno} .{name}")
    return found


def test_no_private_attribute_of_another_object_is_touched():
    offenders = [use for path in sorted(PACKAGE.glob("*.py")) for use in _private_uses(path)]
    assert offenders == []


def test_the_check_sees_a_private_metric_field(tmp_path):
    """The detector itself: the old tally code is reported."""
    old = tmp_path / "old.py"
    old.write_text("def observe(h, v):\n    h._sum.inc(v)\n    h._buckets[0].inc()\n    self._ok = 1\n")
    assert _private_uses(old) == ["old.py:2 ._sum", "old.py:3 ._buckets"]
